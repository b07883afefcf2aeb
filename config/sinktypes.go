package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// SinkTypes are the sink types a config may name: each type's name, what
// a sink's `type:` says, and a function returning a pointer to a new
// config struct of that type holding its defaults. The struct's tags
// declare the keys of the type's sections (doc.go, "Sink types");
// sinks.Types.Configs gives the agent's. Config imports no sink package.
type SinkTypes map[string]func() any

// sinkType is one sink type, ready for the walker and the decoder.
type sinkType struct {
	name string
	new  func() any
	spec *spec // kindSection: the type's own keys
}

// compileSinkTypes derives each type's spec from its config struct. An
// error is a bug in a sink package, not a problem with the config.
func compileSinkTypes(types SinkTypes) (map[string]*sinkType, error) {
	out := make(map[string]*sinkType, len(types))
	for _, name := range sortedKeys(types) {
		t, err := compileSinkType(name, types[name])
		if err != nil {
			return nil, fmt.Errorf("config: sink type %q: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func compileSinkType(name string, newConfig func() any) (*sinkType, error) {
	if !validName(name) {
		return nil, fmt.Errorf("invalid name: %s", nameRule)
	}
	if newConfig == nil {
		return nil, errors.New("no config")
	}
	v := reflect.ValueOf(newConfig())
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config is a %s, want a pointer to a struct", v.Type())
	}
	s, err := structSpec(v.Elem().Type())
	if err != nil {
		return nil, err
	}
	// A sink's section also holds "type" and the pipeline overrides.
	for k := range s.keys {
		if _, common := pipelineSpec.keys[k]; common || k == "type" {
			return nil, fmt.Errorf("key %q is one every sink has", k)
		}
	}
	t := &sinkType{name: name, new: newConfig, spec: s}
	if err := t.checkPipelineDefaults(); err != nil {
		return nil, err
	}
	return t, nil
}

// pipelineDefaulter is a sink type's config that has pipeline defaults of
// its own (see doc.go).
type pipelineDefaulter interface {
	PipelineDefaults() map[string]any
}

// pipelineDefaults are the type's own pipeline defaults, as keys and
// values a section would give; nil if it has none.
func (t *sinkType) pipelineDefaults() map[string]any {
	if pd, ok := t.new().(pipelineDefaulter); ok {
		return pd.PipelineDefaults()
	}
	return nil
}

// checkPipelineDefaults checks the type's pipeline defaults once, as the
// walker checks a section's: a bad one is a bug in the sink package.
func (t *sinkType) checkPipelineDefaults() error {
	d := t.pipelineDefaults()
	for _, k := range sortedKeys(d) {
		sub, ok := pipelineSpec.keys[k]
		if !ok {
			return fmt.Errorf("pipeline default %q is not a pipeline key", k)
		}
		if s, isStr := d[k].(string); isStr && len(sub.oneOf) > 0 && !slices.Contains(sub.oneOf, s) {
			return fmt.Errorf("pipeline default %s: %q is not one of %v", k, s, sub.oneOf)
		}
	}
	var p Pipeline
	if err := decodeInto(&p, d); err != nil {
		return fmt.Errorf("pipeline defaults: %w", err)
	}
	return nil
}

// sinkTypeSpec checks a sink's type.
func (w *walker) sinkTypeSpec() *spec {
	return &spec{kind: kindString, check: func(s string) string {
		if _, ok := w.types[s]; ok {
			return ""
		}
		return fmt.Sprintf("must be a known sink type (%s), got %q", strings.Join(sortedKeys(w.types), ", "), s)
	}}
}

// sink checks one sink. Its keys depend on its type, so a key that belongs
// to another sink type gets a message saying so rather than "unknown key".
// The result holds "type", "pipeline" (the overrides) and "options" (the
// type's own keys). When the type is missing or unknown, "probe" holds the
// keys some type has, each checked as the first such type would.
func (w *walker) sink(path []string, v any) (any, bool) {
	m, ok := w.mapping(path, v)
	if !ok {
		return nil, false
	}
	typ := ""
	if raw, present := m["type"]; !present {
		w.errorf(child(path, "type"), "missing required key")
	} else if got, ok := w.walk(w.sinkTypeSpec(), child(path, "type"), raw); ok {
		typ = got.(string)
	}

	pipeline := make(map[string]any)
	options := make(map[string]any)
	probe := make(map[string]any)
	for _, k := range sortedKeys(m) {
		p := child(path, k)
		if k == "type" {
			continue
		}
		if sub, ok := pipelineSpec.keys[k]; ok {
			if got, ok := w.walk(sub, p, m[k]); ok {
				pipeline[k] = got
			}
			continue
		}
		if typ != "" {
			if sub, ok := w.types[typ].spec.keys[k]; ok {
				if got, ok := w.walk(sub, p, m[k]); ok {
					options[k] = got
				}
				continue
			}
		}
		owners := typesWithKey(w.types, k)
		switch {
		case len(owners) == 0:
			w.errorf(p, "unknown key%s", suggest(k, w.sinkKeys(typ)))
		case typ != "":
			w.errorf(p, "only valid for sinks of type %s, this sink has type %s", strings.Join(owners, " or "), typ)
		default:
			// The type is missing or unknown: still check the value
			// against the first type that has the key.
			if got, ok := w.walk(w.types[owners[0]].spec.keys[k], p, m[k]); ok {
				probe[k] = got
			}
		}
	}
	out := map[string]any{"pipeline": pipeline}
	if typ == "" {
		out["probe"] = probe
		return out, true
	}
	out["type"] = typ
	out["options"] = options
	for _, k := range w.types[typ].spec.required {
		if _, ok := m[k]; !ok {
			w.errorf(child(path, k), "missing required key (for sinks of type %s)", typ)
		}
	}
	w.secretFileClash(w.types[typ].spec, path, m)
	return out, true
}

// secretFileClash reports a secret set both directly and by a file
// (token and token_file) in a section.
func (w *walker) secretFileClash(s *spec, path []string, m map[string]any) {
	for _, fileKey := range sortedKeys(s.secretFiles) {
		key := s.secretFiles[fileKey]
		_, hasFile := m[fileKey]
		_, hasValue := m[key]
		if !hasFile || !hasValue {
			continue
		}
		// Blame the one the environment set, if only one was: that is
		// the override that clashes.
		if w.origins.of(child(path, key)).env && !w.origins.of(child(path, fileKey)).env {
			w.errorf(child(path, key), "cannot be set together with %s", fileKey)
		} else {
			w.errorf(child(path, fileKey), "cannot be set together with %s", key)
		}
	}
}

// typesWithKey lists, sorted, the sink types that have key k.
func typesWithKey(types map[string]*sinkType, k string) []string {
	var owners []string
	for _, typ := range sortedKeys(types) {
		if _, ok := types[typ].spec.keys[k]; ok {
			owners = append(owners, typ)
		}
	}
	return owners
}

// sinkKeys lists the keys a sink of type typ takes; all sink keys when the
// type is not known.
func (w *walker) sinkKeys(typ string) []string {
	keys := []string{"type"}
	keys = append(keys, sortedKeys(pipelineSpec.keys)...)
	for _, t := range sortedKeys(w.types) {
		if typ == "" || typ == t {
			keys = append(keys, sortedKeys(w.types[t].spec.keys)...)
		}
	}
	return keys
}

// sink decodes one sink. norm is the walker's output for it; raw is its
// entry in the merged tree.
func (c *checker) sink(name string, norm, raw map[string]any, cfg *Config, configDir string) Sink {
	path := []string{"sinks", name}
	s := Sink{Pipeline: cfg.Pipeline}
	s.Type, _ = norm["type"].(string)
	if t, ok := c.types[s.Type]; ok {
		// The type's own defaults come over the top-level pipeline's,
		// and the sink's own keys over them.
		c.decode(path, t.pipelineDefaults(), &s.Pipeline)
	}
	overrides := asMap(norm["pipeline"])
	c.decode(path, overrides, &s.Pipeline)
	// Only a sink's own keys can break the orders; the top-level pipeline
	// is checked on its own.
	c.order(path, overrides, s.Pipeline)

	if t, ok := c.types[s.Type]; ok {
		s.Options = c.options(t, path, asMap(norm["options"]), raw, bases{pathConfigDir: configDir, pathDataDir: cfg.DataDir})
	}
	probe := asMap(norm["probe"])
	for _, k := range sortedKeys(probe) {
		c.probe(path, k, probe[k])
	}
	return s
}

// A sink type's config may implement these (see doc.go).
type (
	completer interface {
		Complete(set func(key string) bool)
	}
	validator interface{ Validate() error }
	// fieldErr is a Validate error that names its key.
	fieldErr interface{ Field() (key, msg string) }
)

// bases are the directories relative paths are resolved against, by a
// path option's value.
type bases map[string]string

// options builds a sink's options: its type's defaults, the keys it sets
// over them, paths made absolute, secret files read; then the type's
// Complete and Validate, if it has them.
func (c *checker) options(t *sinkType, path []string, set, raw map[string]any, dirs bases) any {
	opts := t.new()
	c.decode(path, set, opts)
	v := reflect.ValueOf(opts).Elem()
	c.resolvePaths(v, dirs)
	c.readSecretFiles(path, v, raw)
	if cm, ok := opts.(completer); ok {
		cm.Complete(func(key string) bool {
			_, ok := lookup(set, strings.Split(key, "."))
			return ok
		})
	}
	if vd, ok := opts.(validator); ok {
		for _, e := range flatten(vd.Validate()) {
			c.fieldError(t, path, set, e, "")
		}
	}
	return opts
}

// probe checks one key of a sink whose type is missing or unknown with
// the Validate of the first type that has the key, keeping what it says
// about that key.
func (c *checker) probe(path []string, key string, value any) {
	owners := typesWithKey(c.types, key)
	if len(owners) == 0 {
		return
	}
	t := c.types[owners[0]]
	opts := t.new()
	set := map[string]any{key: value}
	c.decode(path, set, opts)
	if vd, ok := opts.(validator); ok {
		for _, e := range flatten(vd.Validate()) {
			c.fieldError(t, path, set, e, key)
		}
	}
}

// fieldError reports what a sink type's Validate returned: a field error
// at its key, anything else at the sink. A key the walker has already
// reported on (a missing or invalid value) is not reported again. With
// only set, only errors at that key or under it are reported.
func (c *checker) fieldError(t *sinkType, path []string, set map[string]any, err error, only string) {
	var f fieldErr
	if !errors.As(err, &f) {
		if only == "" {
			c.errs.add(&Error{File: c.origins.of(path).name, Key: keyString(path), Msg: err.Error(), Err: err})
		}
		return
	}
	key, msg := f.Field()
	keys := strings.Split(key, ".")
	if only != "" && keys[0] != only {
		return
	}
	p := append(append([]string(nil), path...), keys...)
	for i := len(path) + 1; i <= len(p); i++ {
		if c.failed[pathID(p[:i])] {
			return
		}
	}
	// A value from the environment, or a secret, is never quoted.
	if v, ok := lookup(set, keys); ok {
		if s, ok := v.(string); ok && s != "" && (c.origins.of(p).env || specAt(t.spec, keys).secret) {
			msg = strings.ReplaceAll(msg, strconv.Quote(s), describe(s, true))
		}
	}
	c.errs.add(&Error{File: c.origins.of(p).name, Key: keyString(p), Msg: msg, Err: err})
}

// resolvePaths makes every path key of a struct absolute.
func (c *checker) resolvePaths(v reflect.Value, dirs bases) {
	fields, _ := fieldsOf(v.Type())
	for _, f := range fields {
		fv := v.Field(f.index)
		switch {
		case f.opts.path != "":
			fv.SetString(resolvePath(dirs[f.opts.path], fv.String()))
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			c.resolvePaths(fv, dirs)
		}
	}
}

// readSecretFiles reads each secret file a struct names into the key it
// holds, unless that key is set too (the walker has reported the clash).
func (c *checker) readSecretFiles(path []string, v reflect.Value, raw map[string]any) {
	fields, _ := fieldsOf(v.Type())
	for _, f := range fields {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			c.readSecretFiles(child(path, f.key), fv, asMap(raw[f.key]))
			continue
		}
		if f.opts.secretFile == "" || fv.String() == "" {
			continue
		}
		if _, both := raw[f.opts.secretFile]; both {
			continue
		}
		for _, g := range fields {
			if g.key == f.opts.secretFile {
				what := strings.ReplaceAll(f.key, "_", " ")
				v.Field(g.index).SetString(c.readSecretFile(child(path, f.key), fv.String(), what))
			}
		}
	}
}

// lookup finds a dotted key's value in a normalized mapping.
func lookup(m map[string]any, keys []string) (any, bool) {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// specAt is the spec of a dotted key under s; an empty spec if there is
// none.
func specAt(s *spec, keys []string) *spec {
	for _, k := range keys {
		if s == nil || s.keys[k] == nil {
			return &spec{}
		}
		s = s.keys[k]
	}
	return s
}

// flatten lists the errors an errors.Join holds, however nested.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
