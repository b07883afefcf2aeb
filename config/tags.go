package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// A struct field is a config key when its `config` tag names one:
//
//	Path string `config:"path,path=data_dir" doc:"the database file"`
//
// The first item is the key; the others are options (see doc.go, "Sink
// types"). The decoder, the renderer and, for sink types, the schema all
// read these tags, so a key is declared once, where its field is.

// field is one struct field that is a config key.
type field struct {
	index int
	key   string
	opts  keyOptions
	doc   string
}

// keyOptions are a key's tag options.
type keyOptions struct {
	required bool
	empty    bool     // a string may be ""
	zero     bool     // an int or duration may be 0
	secret   bool     // never shown: masked in messages and renderings
	oneOf    []string // a string's allowed values
	// path makes a string a file path, made absolute relative to the
	// main config file's directory or to data_dir.
	path string
	// secretFile names the key, in the same section, whose value the file
	// this key names holds: the loader reads it (within
	// MaxTokenFileBytes), and the two keys cannot both be set.
	secretFile string
}

const (
	pathConfigDir = "config_dir"
	pathDataDir   = "data_dir"
)

var durationType = reflect.TypeFor[time.Duration]()

// fieldsOf lists the fields of struct type t that are config keys.
func fieldsOf(t reflect.Type) ([]field, error) {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("config")
		if !ok || tag == "-" || !f.IsExported() {
			continue
		}
		items := strings.Split(tag, ",")
		fd := field{index: i, key: items[0], doc: f.Tag.Get("doc")}
		if fd.key == "" {
			return nil, fmt.Errorf("field %s: the config tag names no key", f.Name)
		}
		for _, item := range items[1:] {
			name, value, _ := strings.Cut(item, "=")
			switch name {
			case "required":
				fd.opts.required = true
			case "empty":
				fd.opts.empty = true
			case "zero":
				fd.opts.zero = true
			case "secret":
				fd.opts.secret = true
			case "oneof":
				fd.opts.oneOf = strings.Split(value, "|")
			case "path":
				if value != pathConfigDir && value != pathDataDir {
					return nil, fmt.Errorf("field %s: path=%s: want path=%s or path=%s", f.Name, value, pathConfigDir, pathDataDir)
				}
				fd.opts.path = value
			case "secretfile":
				fd.opts.secretFile = value
			default:
				return nil, fmt.Errorf("field %s: unknown config tag option %q", f.Name, item)
			}
		}
		out = append(out, fd)
	}
	return out, nil
}

// structSpec derives the spec of a section from its struct's tags.
func structSpec(t reflect.Type) (*spec, error) {
	fields, err := fieldsOf(t)
	if err != nil {
		return nil, err
	}
	s := &spec{kind: kindSection, keys: make(map[string]*spec, len(fields))}
	for _, f := range fields {
		sf := t.Field(f.index)
		if _, dup := s.keys[f.key]; dup {
			return nil, fmt.Errorf("field %s: key %q is taken by another field", sf.Name, f.key)
		}
		sub, err := fieldSpec(sf.Type, f.opts)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", sf.Name, err)
		}
		sub.doc = f.doc
		s.keys[f.key] = sub
		if f.opts.required {
			s.required = append(s.required, f.key)
		}
	}
	for _, f := range fields {
		if f.opts.secretFile == "" {
			continue
		}
		target, ok := s.keys[f.opts.secretFile]
		if !ok || target.kind != kindString || !target.secret || s.keys[f.key].kind != kindString {
			return nil, fmt.Errorf("key %s: secretfile=%s: want a string key and a secret string key of the same section", f.key, f.opts.secretFile)
		}
		if s.secretFiles == nil {
			s.secretFiles = make(map[string]string)
		}
		s.secretFiles[f.key] = f.opts.secretFile
	}
	return s, nil
}

func fieldSpec(t reflect.Type, o keyOptions) (*spec, error) {
	var s *spec
	switch {
	case t == durationType:
		s = &spec{kind: kindDuration, zero: o.zero}
	case t.Kind() == reflect.String:
		s = &spec{kind: kindString, empty: o.empty, oneOf: o.oneOf}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		s = &spec{kind: kindInt, zero: o.zero}
	case t.Kind() == reflect.Bool:
		s = &spec{kind: kindBool}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		s = &spec{kind: kindList, elem: &spec{kind: kindString, secret: o.secret}}
	case t.Kind() == reflect.Struct:
		sub, err := structSpec(t)
		if err != nil {
			return nil, err
		}
		s = sub
	default:
		return nil, fmt.Errorf("a %s cannot be a config key (use string, int, int64, bool, time.Duration, []string or a struct)", t)
	}
	if s.kind != kindString && (o.empty || len(o.oneOf) > 0 || o.path != "" || o.secretFile != "") {
		return nil, fmt.Errorf("empty, oneof, path and secretfile are for strings")
	}
	if s.kind != kindInt && s.kind != kindDuration && o.zero {
		return nil, fmt.Errorf("zero is for ints and durations")
	}
	s.secret = o.secret
	return s, nil
}

// decodeInto sets the fields of the struct out points to from a
// normalized mapping (the walker's output), by their config tags. Keys
// not in the mapping keep their values, the defaults. The walker has
// checked every key and type, so an error here is a bug in this package
// or in a sink type's struct.
func decodeInto(out any, in map[string]any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("decode into a %T, not a pointer to a struct", out)
	}
	return setStruct(v.Elem(), in)
}

func setStruct(dst reflect.Value, in map[string]any) error {
	fields, err := fieldsOf(dst.Type())
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(in) {
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == k })
		if i < 0 {
			return fmt.Errorf("%s: no field for this key in %s", k, dst.Type())
		}
		if err := setValue(dst.Field(fields[i].index), in[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func setValue(dst reflect.Value, v any) error {
	mismatch := fmt.Errorf("cannot put a %T in a %s", v, dst.Type())
	switch dst.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return mismatch
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int64:
		switch n := v.(type) {
		case time.Duration:
			if dst.Type() != durationType {
				return mismatch
			}
			dst.SetInt(int64(n))
		case int:
			if dst.Type() == durationType {
				return mismatch
			}
			dst.SetInt(int64(n))
		default:
			return mismatch
		}
	case reflect.Slice:
		list, ok := v.([]string)
		if !ok || dst.Type().Elem().Kind() != reflect.String {
			return mismatch
		}
		out := reflect.MakeSlice(dst.Type(), len(list), len(list))
		for i, s := range list {
			out.Index(i).SetString(s)
		}
		dst.Set(out)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok || dst.Type() != reflect.TypeOf(m) {
			return mismatch
		}
		dst.Set(reflect.ValueOf(m))
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch
		}
		return setStruct(dst, m)
	default:
		return mismatch
	}
	return nil
}
