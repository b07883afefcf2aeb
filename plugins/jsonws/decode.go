package jsonws

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// decodeStrict decodes a feed's config (or a part of it) into v, a
// pointer, reporting every problem with its full key (rules[0].match[1].path)
// in words rather than Go's (`must be a string, got number 1`, not
// `cannot unmarshal number into Go struct field`): unknown keys, values
// of the wrong kind, durations without a unit. It goes on past a problem,
// leaving that value zero, so one pass reports them all. prefix is the
// key of raw itself ("" for the whole config).
func decodeStrict(raw []byte, v any, prefix string) sdk.ConfigErrors {
	d := &decoder{}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("jsonws: decodeStrict needs a non-nil pointer")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("null")
	}
	if !json.Valid(raw) {
		d.fail(prefix, "is not valid JSON")
		return d.errs
	}
	d.value(raw, rv.Elem(), prefix)
	return d.errs
}

type decoder struct {
	errs sdk.ConfigErrors
}

func (d *decoder) fail(key, format string, args ...any) {
	d.errs = append(d.errs, sdk.ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType    = reflect.TypeFor[sdk.Duration]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

func joinKey(key, name string) string {
	if name == "" {
		name = `""` // an empty key still names a place
	}
	if key == "" {
		return name
	}
	return key + "." + name
}

func (d *decoder) value(raw []byte, rv reflect.Value, key string) {
	got := gjson.ParseBytes(raw)
	t := rv.Type()
	if t == rawMessageType {
		// Kept as written, null included: `equals: null` is a test.
		rv.SetBytes(append([]byte(nil), raw...))
		return
	}
	if got.Type == gjson.Null {
		rv.SetZero()
		return
	}
	switch {
	case t == durationType:
		d.duration(got, rv, key)
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := json.Unmarshal(raw, rv.Addr().Interface()); err != nil {
			d.fail(key, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return
	}
	mismatch := func() { d.fail(key, "must be %s, got %s", sdk.TypeWord(t), describe(got)) }
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.value(raw, p.Elem(), key)
		rv.Set(p)
	case reflect.Struct:
		if !got.IsObject() {
			mismatch()
			return
		}
		fields := structFields(t)
		obj := map[string]json.RawMessage{}
		_ = json.Unmarshal(raw, &obj) // valid JSON object: cannot fail
		for _, name := range sortedKeys(obj) {
			idx, ok := fields[name]
			if !ok {
				d.fail(joinKey(key, name), "unknown key")
				continue
			}
			d.value(obj[name], rv.FieldByIndex(idx), joinKey(key, name))
		}
	case reflect.Map:
		if !got.IsObject() || t.Key().Kind() != reflect.String {
			mismatch()
			return
		}
		obj := map[string]json.RawMessage{}
		_ = json.Unmarshal(raw, &obj)
		m := reflect.MakeMapWithSize(t, len(obj))
		for _, name := range sortedKeys(obj) {
			e := reflect.New(t.Elem()).Elem()
			d.value(obj[name], e, joinKey(key, name))
			m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), e)
		}
		rv.Set(m)
	case reflect.Slice:
		if !got.IsArray() {
			mismatch()
			return
		}
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			d.value(item, s.Index(i), key+"["+strconv.Itoa(i)+"]")
		}
		rv.Set(s)
	case reflect.String:
		if got.Type != gjson.String {
			mismatch()
			return
		}
		rv.SetString(got.Str)
	case reflect.Bool:
		if got.Type != gjson.True && got.Type != gjson.False {
			mismatch()
			return
		}
		rv.SetBool(got.Type == gjson.True)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(got.Raw, 10, 64)
		if got.Type != gjson.Number || err != nil || rv.OverflowInt(n) {
			mismatch()
			return
		}
		rv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(got.Raw, 10, 64)
		if got.Type != gjson.Number || err != nil || rv.OverflowUint(n) {
			mismatch()
			return
		}
		rv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		if got.Type != gjson.Number || math.IsInf(got.Num, 0) {
			mismatch()
			return
		}
		rv.SetFloat(got.Num)
	case reflect.Interface:
		var x any
		_ = json.Unmarshal(raw, &x)
		if x != nil {
			rv.Set(reflect.ValueOf(x))
		}
	default:
		mismatch()
	}
}

// duration reads "30s" or "1m30s". A bare number would be nanoseconds,
// which nobody means: `stale_after: 30` is refused with a hint; 0 is
// allowed (it turns things off).
func (d *decoder) duration(got gjson.Result, rv reflect.Value, key string) {
	switch got.Type {
	case gjson.String:
		v, err := time.ParseDuration(strings.TrimSpace(got.Str))
		if err != nil {
			d.fail(key, "invalid duration %q: write a number with a unit, such as \"500ms\", \"30s\" or \"5m\"", got.Str)
			return
		}
		rv.SetInt(int64(v))
	case gjson.Number:
		if got.Raw == "0" {
			rv.SetInt(0)
			return
		}
		d.fail(key, "must be a duration with a unit, such as \"%ss\" (a bare number is not a duration)", got.Raw)
	default:
		d.fail(key, "must be a duration such as \"30s\", got %s", describe(got))
	}
}

// structFields maps each JSON name of a struct (embedded structs' fields
// included) to its field index.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(slices.Clone(prefix), i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}

// jsonUnquote reads a JSON string.
func jsonUnquote(raw string, dst *string) error { return json.Unmarshal([]byte(raw), dst) }

// jsonQuote writes s as a JSON string.
func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
