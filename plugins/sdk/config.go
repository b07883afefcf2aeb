package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ConfigError is one problem in a feed's config, at Key (a dotted path
// inside `config:`, with [i] for list items; empty for the config as a
// whole).
type ConfigError struct {
	Key string
	Msg string
}

func (e ConfigError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// ConfigErrors is every problem found in a config at once.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Duration is a time.Duration that decodes from JSON as "1.5s", for use
// in plugin config structs. A bare number is refused, 0 aside: `30` in a
// feed file means seconds to some and nanoseconds to Go.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf(`must be a duration like "500ms" or "5m", got %q`, s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		if n == 0 {
			*d = 0
			return nil
		}
		return errors.New(`must be a duration with a unit, such as "30s" (a bare number is not a duration)`)
	}
	return fmt.Errorf(`must be a duration like "500ms" or "5m", got %s`, kindWord(jsonKind(b)))
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Decode unmarshals the config into v as encoding/json does, except that
// it reports every problem, not the first: an unknown key, a value of the
// wrong type, a value its type's UnmarshalJSON refuses (a Duration that
// is not one), each as a ConfigError naming its key in full
// ("reconnect.max", "rules[2].fields"). What decodes is set even when
// other keys fail. It is Check(v).Err().
func (r ConfigureRequest) Decode(v any) error { return r.Check(v).Err() }

// Check decodes the config into v as Decode does and returns a
// ConfigCheck holding the problems found, for Configure to add its own
// checks to: checks of a key that failed to decode are skipped, so a bad
// value is reported once.
func (r ConfigureRequest) Check(v any) *ConfigCheck {
	c := &ConfigCheck{decoding: true}
	defer func() { c.decoding = false }()
	raw := bytes.TrimSpace(r.Config)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	rv := reflect.ValueOf(v)
	switch {
	case !json.Valid(raw):
		var x any
		c.Errorf("", "%v", json.Unmarshal(raw, &x))
	case rv.Kind() != reflect.Pointer || rv.IsNil():
		c.Errorf("", "the plugin decoded its config into %T, not a pointer", v)
	default:
		c.decode("", raw, rv.Elem())
	}
	return c
}

// ConfigCheck collects the problems of a config, each under its key, and
// never stops at the first: Configure reports them all at once. Its
// checks (That, Required, Int, Float, Duration, OneOf) record a problem
// when a value fails and report whether it passed; a key with a problem
// already is not checked again, and fails.
//
//	cfg := defaults()
//	c := req.Check(&cfg)
//	c.Required("url", cfg.URL != "")
//	c.Int("depth", cfg.Depth, 1, 1000)
//	c.Duration("timeout", cfg.Timeout, time.Millisecond, time.Minute)
//	if err := c.Err(); err != nil {
//		return nil, err
//	}
//
// The zero value is ready to use.
type ConfigCheck struct {
	errs ConfigErrors
	bad  map[string]bool // keys with a problem
	// undecoded are the keys whose values did not decode: what is under
	// them is not checked either.
	undecoded map[string]bool
	decoding  bool
}

// Errorf records a problem at key.
func (c *ConfigCheck) Errorf(key, format string, args ...any) {
	c.errs = append(c.errs, ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	if c.bad == nil {
		c.bad, c.undecoded = make(map[string]bool), make(map[string]bool)
	}
	c.bad[key] = true
	if c.decoding {
		c.undecoded[key] = true
	}
}

// Add records what a parser of part of the config returned: each
// ConfigError of err with prefix put before its key, or err itself at
// prefix.
func (c *ConfigCheck) Add(prefix string, err error) {
	if err == nil {
		return
	}
	var ces ConfigErrors
	var ce ConfigError
	switch {
	case errors.As(err, &ces):
	case errors.As(err, &ce):
		ces = ConfigErrors{ce}
	default:
		c.Errorf(prefix, "%s", err.Error())
		return
	}
	for _, e := range ces {
		c.Errorf(joinKey(prefix, e.Key), "%s", e.Msg)
	}
}

// OK reports whether no problem has been recorded at key, and the value
// of every key it is part of ("a" for "a.b" and "a[0]") decoded.
func (c *ConfigCheck) OK(key string) bool {
	if c.bad[key] || c.undecoded[""] {
		return false
	}
	for k := parentKey(key); k != ""; k = parentKey(k) {
		if c.undecoded[k] {
			return false
		}
	}
	return true
}

// That records the problem described by format at key unless ok, and
// reports whether the key passed.
func (c *ConfigCheck) That(key string, ok bool, format string, args ...any) bool {
	if !c.OK(key) {
		return false
	}
	if !ok {
		c.Errorf(key, format, args...)
	}
	return ok
}

// Required checks that key is set.
func (c *ConfigCheck) Required(key string, set bool) bool {
	return c.That(key, set, "is required")
}

// Int checks that min <= v <= max; math.MinInt and math.MaxInt leave a
// side open.
func (c *ConfigCheck) Int(key string, v, min, max int) bool {
	return c.That(key, min <= v && v <= max, "%s, got %d", bounds(min, max, math.MinInt, math.MaxInt, strconv.Itoa), v)
}

// Float checks that min <= v <= max (so not NaN); infinities leave a
// side open.
func (c *ConfigCheck) Float(key string, v, min, max float64) bool {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return c.That(key, min <= v && v <= max, "%s, got %s", bounds(min, max, math.Inf(-1), math.Inf(1), f), f(v))
}

// Duration checks that min <= v <= max; math.MinInt64 and math.MaxInt64
// leave a side open.
func (c *ConfigCheck) Duration(key string, v, min, max time.Duration) bool {
	return c.That(key, min <= v && v <= max, "%s, got %v", bounds(min, max, math.MinInt64, math.MaxInt64, time.Duration.String), v)
}

// OneOf checks that v is one of allowed.
func (c *ConfigCheck) OneOf(key, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return c.OK(key)
		}
	}
	list := strings.Join(allowed, ", ")
	if n := len(allowed); n > 1 {
		list = strings.Join(allowed[:n-1], ", ") + " or " + allowed[n-1]
	}
	return c.That(key, false, "must be %s, got %q", list, v)
}

// Err returns every problem recorded, as ConfigErrors, or nil.
func (c *ConfigCheck) Err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

func bounds[T comparable](min, max, open0, open1 T, format func(T) string) string {
	switch {
	case min == open0:
		return "must be at most " + format(max)
	case max == open1:
		return "must be at least " + format(min)
	}
	return "must be between " + format(min) + " and " + format(max)
}

func joinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case key[0] == '[':
		return prefix + key
	}
	return prefix + "." + key
}

// parentKey is the key k is part of: "a" for "a.b" and "a[0]".
func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i >= 0 {
		return k[:i]
	}
	return ""
}

// decode sets rv from raw, at key. Structs, lists and maps are walked key
// by key and item by item, so that every problem is found and named in
// full; other values are decoded by encoding/json, unknown keys refused.
func (c *ConfigCheck) decode(key string, raw []byte, rv reflect.Value) {
	if unmarshaler(rv) {
		c.leaf(key, raw, rv)
		return
	}
	null := string(raw) == "null"
	switch rv.Kind() {
	case reflect.Pointer:
		if !walkable(rv.Type().Elem()) {
			break
		}
		if null {
			rv.SetZero()
			return
		}
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		c.decode(key, raw, rv.Elem())
		return
	case reflect.Struct:
		if null {
			return
		}
		c.object(key, raw, "a mapping", func(name string, val []byte) {
			f, ok := fieldByName(rv, name)
			if !ok {
				c.Errorf(joinKey(key, name), "unknown key")
				return
			}
			c.decode(joinKey(key, name), val, f)
		})
		return
	case reflect.Slice:
		var items []json.RawMessage
		if !walkable(rv.Type()) || null || json.Unmarshal(raw, &items) != nil {
			break // encoding/json sets nil, or says what it wanted
		}
		rv.Set(reflect.MakeSlice(rv.Type(), len(items), len(items)))
		for i, item := range items {
			c.decode(key+"["+strconv.Itoa(i)+"]", item, rv.Index(i))
		}
		return
	case reflect.Map:
		if !walkable(rv.Type()) || null || jsonKind(raw) != "object" {
			break
		}
		if rv.IsNil() {
			rv.Set(reflect.MakeMap(rv.Type()))
		}
		c.object(key, raw, "a mapping", func(name string, val []byte) {
			elem := reflect.New(rv.Type().Elem()).Elem()
			n := len(c.errs)
			c.decode(joinKey(key, name), val, elem)
			if len(c.errs) == n { // a value that failed is left out
				rv.SetMapIndex(reflect.ValueOf(name).Convert(rv.Type().Key()), elem)
			}
		})
		return
	}
	c.leaf(key, raw, rv)
}

// object calls f for each member of the JSON object raw, in order.
func (c *ConfigCheck) object(key string, raw []byte, want string, f func(name string, val []byte)) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		c.Errorf(key, "must be %s, got %s", want, kindWord(jsonKind(raw)))
		return
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			c.Errorf(key, "%v", err)
			return
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			c.Errorf(key, "%v", err)
			return
		}
		f(tok.(string), val)
	}
}

// leaf decodes raw into rv with encoding/json.
func (c *ConfigCheck) leaf(key string, raw []byte, rv reflect.Value) {
	target := reflect.New(rv.Type())
	target.Elem().Set(rv)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(target.Interface())
	if err == nil {
		rv.Set(target.Elem())
		return
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		c.Errorf(joinKey(key, typeErr.Field), "must be %s, got %s", TypeWord(typeErr.Type), kindWord(typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		c.Errorf(joinKey(key, name), "unknown key")
	default:
		c.Errorf(key, "%s", err.Error())
	}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unmarshaler reports whether rv decodes itself.
func unmarshaler(rv reflect.Value) bool {
	return rv.Type().Implements(unmarshalerType) || reflect.PointerTo(rv.Type()).Implements(unmarshalerType)
}

// walkable reports whether values of t are walked key by key, item by
// item: structs, lists (not of bytes), maps with string keys, and
// pointers to them, unless they decode themselves.
func walkable(t reflect.Type) bool {
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Pointer:
		return walkable(t.Elem())
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Map:
		return t.Key().Kind() == reflect.String
	}
	return false
}

// fieldByName finds the field of struct rv that the JSON key name sets,
// as encoding/json does: the json tag's name or the field's, promoted
// fields of embedded structs included, an exact match before one that
// differs in case. Nil embedded pointers on the way are allocated.
func fieldByName(rv reflect.Value, name string) (reflect.Value, bool) {
	fields := jsonFields(rv.Type(), nil)
	var index []int
	for _, f := range fields {
		if f.name == name {
			index = f.index
			break
		}
	}
	if index == nil {
		for _, f := range fields {
			if strings.EqualFold(f.name, name) {
				index = f.index
				break
			}
		}
	}
	if index == nil {
		return reflect.Value{}, false
	}
	v := rv
	for _, i := range index {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(i)
	}
	return v, true
}

type jsonField struct {
	name  string
	index []int
}

// jsonFields lists the keys of struct type t: its own fields first, then
// those promoted from embedded structs that no shallower field names.
func jsonFields(t reflect.Type, at []int) []jsonField {
	var own []jsonField
	var embedded []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		index := append(append([]int(nil), at...), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, jsonFields(ft, index)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		own = append(own, jsonField{name: name, index: index})
	}
	for _, e := range embedded {
		taken := false
		for _, o := range own {
			if o.name == e.name {
				taken = true
				break
			}
		}
		if !taken {
			own = append(own, e)
		}
	}
	return own
}

// TypeWord says what a value of Go type t is in a config file: "a
// string", "an integer", "a list", "a mapping". It is how the SDK's config
// errors say what a key wants ("must be a list, got a string"); a plugin
// that decodes a config its own way uses it so that its messages read
// the same.
func TypeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return TypeWord(t.Elem())
	}
	return "a " + t.Kind().String()
}

// kindWord says what kind of JSON value encoding/json or jsonKind named.
func kindWord(kind string) string {
	switch kind {
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return kind
}

// jsonKind names the kind of JSON value raw holds.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}
