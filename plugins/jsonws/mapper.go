package jsonws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Rule maps the messages it matches to points. README.md has the details.
type Rule struct {
	// Name identifies the rule in mapping errors; default "rules[i]".
	Name string `json:"name"`
	// Match holds conditions that must all hold; none matches everything.
	Match []Condition `json:"match"`
	// Continue lets later rules also map a message this rule matched.
	Continue bool `json:"continue"`
	// Alive makes a heartbeat rule: a message it matches proves the feed
	// alive (it counts as data for stale_after) and is mapped to nothing.
	// An alive rule has only name, match and continue.
	Alive bool `json:"alive"`
	// Each is a path to an array: one point per element, whose paths are
	// read from the element ("$." prefixed paths from the message).
	Each string `json:"each"`
	// Measurement is a literal name; MeasurementPath reads it from the
	// message. Set exactly one.
	Measurement     string `json:"measurement"`
	MeasurementPath string `json:"measurement_path"`
	// Tags and Fields map names to a path (string shorthand) or a value
	// spec object: {path | value, type, map, optional}.
	Tags   map[string]json.RawMessage `json:"tags"`
	Fields map[string]json.RawMessage `json:"fields"`
	// Time is a path (string shorthand, RFC 3339) or {path, format,
	// optional}; default: the time the message was received.
	Time json.RawMessage `json:"time"`
	// Unique names the tags and fields (and "time") that identify a point.
	Unique []string `json:"unique"`
	// Remember stores values of the messages the rule matches in tables
	// that later messages on the same connection read with lookup (in a
	// tag or field) and in (in a condition). A rule with only name,
	// match, continue and remember maps nothing.
	Remember []Remember `json:"remember"`
}

// Condition is one test on a message: exactly one of Equals (a JSON
// scalar, compared by kind and value), Exists (true: present, false:
// absent), Regex (matched against a string's value or another value's
// JSON text) and In (the value is a key remembered in that table).
type Condition struct {
	Path   string          `json:"path"`
	Equals json.RawMessage `json:"equals"`
	Exists *bool           `json:"exists"`
	Regex  string          `json:"regex"`
	In     string          `json:"in"`
}

// ValueSpec is the object form of a tag or field: where the value comes
// from (Path, or a literal Value; Lookup translates the value at Path
// through a remembered table), then the transforms (Regex, Abs or Sign,
// Scale, Case; see transforms), then Map, then Type.
type ValueSpec struct {
	Path     string                     `json:"path"`
	Value    json.RawMessage            `json:"value"`
	Lookup   string                     `json:"lookup"`
	Regex    string                     `json:"regex"`
	Abs      bool                       `json:"abs"`
	Sign     bool                       `json:"sign"`
	Scale    json.RawMessage            `json:"scale"`
	Case     string                     `json:"case"`
	Type     string                     `json:"type"`
	Map      map[string]json.RawMessage `json:"map"`
	Optional bool                       `json:"optional"`
}

// TimeSpec is the object form of a rule's time.
type TimeSpec struct {
	Path     string `json:"path"`
	Format   string `json:"format"`
	Optional bool   `json:"optional"`
}

// Time formats besides Go layouts.
const (
	TimeUnixS   = "unix_s"
	TimeUnixMs  = "unix_ms"
	TimeUnixUs  = "unix_us"
	TimeUnixNs  = "unix_ns"
	TimeRFC3339 = "rfc3339"
)

// MapError is a message a rule matched but could not fully map: a missing
// path, a value of the wrong kind. The point concerned is skipped; other
// points of the message are still produced. Rule is empty for a message
// that is not JSON at all.
type MapError struct {
	Rule string
	Path string
	Msg  string
}

// MapError.Msg of a message that was not mapped at all.
const (
	ErrNotJSON = "message is not valid JSON"
	ErrTooDeep = "message nests arrays and objects deeper than max_json_depth"
)

func (e MapError) Error() string {
	var b strings.Builder
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", e.Rule)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, "path %s: ", e.Path)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Mapper turns JSON messages into points with a list of rules. It holds
// no state between messages and is safe for concurrent use; what rules
// remember is kept in a State the caller passes (one per connection).
type Mapper struct {
	rules        []*rule
	measurements []sluice.Measurement
	maxDepth     int             // deeper messages are refused before gjson sees them
	filled       map[string]bool // the tables rules remember into
}

// fills reports whether some rule remembers into table.
func (m *Mapper) fills(table string) bool { return m.filled[table] }

type rule struct {
	name      string
	match     []cond
	cont      bool
	alive     bool
	remembers []remember
	maps      bool // it maps points (not only alive or remember)
	each      *jpath
	meas      string
	measPath  *jpath
	tags      []valueRef // sorted by name
	fields    []valueRef // sorted by name
	time      *timeRef
}

type cond struct {
	path   jpath
	equals *gjson.Result
	exists *bool
	regex  *regexp.Regexp
	in     string // a table
}

type valueRef struct {
	name     string
	path     *jpath       // nil for a literal
	literal  gjson.Result // when path is nil
	lookup   string       // a table the value at path is a key of
	tf       transforms
	kind     sluice.Kind // KindInvalid: inferred from the JSON value
	mapping  map[string]gjson.Result
	optional bool
}

type timeRef struct {
	path     jpath
	format   string // a TimeX constant or a Go layout
	optional bool
}

// NewMapper compiles rules, reporting every problem with its config key.
func NewMapper(rules []Rule) (*Mapper, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	m := &Mapper{maxDepth: DefaultMaxJSONDepth}
	unique := map[string][]string{}
	var order []string
	names := map[string]bool{}
	tables := &tableUse{filled: map[string]bool{}}
	for i, r := range rules {
		key := fmt.Sprintf("rules[%d]", i)
		cr, rerrs := compileRule(key, r, tables)
		errs = append(errs, rerrs...)
		if names[cr.name] {
			errs = append(errs, sdk.ConfigError{Key: key + ".name", Msg: fmt.Sprintf("%q is used by an earlier rule", cr.name)})
		}
		names[cr.name] = true
		m.rules = append(m.rules, cr)
		if cr.meas == "" {
			continue
		}
		prev, seen := unique[cr.meas]
		switch {
		case !seen:
			unique[cr.meas] = r.Unique
			order = append(order, cr.meas)
		case len(r.Unique) > 0 && len(prev) > 0 && !slices.Equal(prev, r.Unique):
			errs = append(errs, sdk.ConfigError{Key: key + ".unique",
				Msg: fmt.Sprintf("measurement %q already has unique %v from an earlier rule", cr.meas, prev)})
		case len(prev) == 0:
			unique[cr.meas] = r.Unique
		}
	}
	for _, u := range tables.used {
		if !tables.filled[u.table] {
			errs = append(errs, sdk.ConfigError{Key: u.key,
				Msg: fmt.Sprintf("no rule remembers into table %q (a rule's remember: [{table: %s, key: PATH, value: PATH}] fills it)", u.table, u.table)})
		}
	}
	for _, name := range order {
		m.measurements = append(m.measurements, sluice.Measurement{Name: name, Unique: unique[name]})
	}
	m.filled = tables.filled
	return m, errs
}

// tableUse collects the tables rules fill and read, to refuse a lookup
// of a table nothing fills.
type tableUse struct {
	filled map[string]bool
	used   []struct{ key, table string }
}

func (u *tableUse) use(key, table string) {
	if table != "" {
		u.used = append(u.used, struct{ key, table string }{key, table})
	}
}

// Measurements are the literal measurements the rules write, with their
// uniqueness keys.
func (m *Mapper) Measurements() []sluice.Measurement { return slices.Clone(m.measurements) }

func compileRule(key string, r Rule, tables *tableUse) (*rule, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	fail := func(k, format string, args ...any) {
		errs = append(errs, sdk.ConfigError{Key: key + k, Msg: fmt.Sprintf(format, args...)})
	}
	cr := &rule{name: r.Name, cont: r.Continue, alive: r.Alive, meas: r.Measurement}
	if cr.name == "" {
		cr.name = key
	}
	for i, c := range r.Match {
		cd, err := compileCond(c)
		if err != nil {
			fail(fmt.Sprintf(".match[%d]", i), "%v", err)
		}
		tables.use(fmt.Sprintf("%s.match[%d].in", key, i), cd.in)
		cr.match = append(cr.match, cd)
	}
	for i, rm := range r.Remember {
		k := fmt.Sprintf(".remember[%d]", i)
		if !validTableName(rm.Table) {
			fail(k+".table", "must be a name of letters, digits, '_' and '-', got %q", rm.Table)
		}
		kp, err := compilePath(rm.Key)
		if err != nil {
			fail(k+".key", "%v", err)
		}
		vp, err := compilePath(rm.Value)
		if err != nil {
			fail(k+".value", "%v", err)
		}
		tables.filled[rm.Table] = true
		cr.remembers = append(cr.remembers, remember{table: rm.Table, key: kp, value: vp})
	}
	mapping := map[string]bool{
		"each": r.Each != "", "measurement": r.Measurement != "", "measurement_path": r.MeasurementPath != "",
		"tags": len(r.Tags) > 0, "fields": len(r.Fields) > 0, "time": len(bytes.TrimSpace(r.Time)) > 0 && string(bytes.TrimSpace(r.Time)) != "null", "unique": len(r.Unique) > 0,
	}
	mapsAny := slices.Contains(slices.Collect(maps.Values(mapping)), true)
	switch {
	case r.Alive:
		for _, k := range sortedKeys(mapping) {
			if mapping[k] {
				fail("."+k, "an alive rule maps nothing: it only marks the messages it matches as proof the feed is alive; drop %s (or alive)", k)
			}
		}
		if len(r.Remember) > 0 {
			fail(".remember", "an alive rule only proves the feed alive; remember in a rule of its own")
		}
		if len(r.Match) == 0 {
			fail(".match", "an alive rule needs conditions: without them every message would prove the feed alive")
		}
		slices.SortFunc(errs, func(a, b sdk.ConfigError) int { return strings.Compare(a.Key, b.Key) })
		cr.meas = ""
		return cr, errs
	case len(r.Remember) > 0 && !mapsAny:
		// A state rule: it remembers and maps nothing.
		if len(r.Match) == 0 {
			fail(".match", "a rule that only remembers needs conditions: without them it would take every message")
		}
		return cr, errs
	}
	cr.maps = true
	if r.Each != "" {
		p, err := compilePath(r.Each)
		if err != nil {
			fail(".each", "%v", err)
		}
		if p.root {
			fail(".each", "is always read from the message; drop the %q prefix", rootPrefix)
		}
		cr.each = &p
	}
	switch {
	case (r.Measurement == "") == (r.MeasurementPath == ""):
		fail("", "set exactly one of measurement (a name) and measurement_path")
	case r.MeasurementPath != "":
		p, err := compilePath(r.MeasurementPath)
		if err != nil {
			fail(".measurement_path", "%v", err)
		}
		cr.measPath = &p
		if len(r.Unique) > 0 {
			fail(".unique", "needs a literal measurement: a uniqueness key is declared per measurement before any message arrives")
		}
	}

	for _, name := range sortedKeys(r.Tags) {
		v, verrs := compileValue(key+".tags."+name, name, r.Tags[name], true)
		errs = append(errs, verrs...)
		tables.use(key+".tags."+name+".lookup", v.lookup)
		cr.tags = append(cr.tags, v)
	}
	if len(r.Fields) == 0 {
		fail(".fields", "must name at least one field: a point without fields cannot be stored")
	}
	for _, name := range sortedKeys(r.Fields) {
		if _, dup := r.Tags[name]; dup {
			fail(".fields."+name, "is also a tag; a name can be one or the other")
		}
		v, verrs := compileValue(key+".fields."+name, name, r.Fields[name], false)
		errs = append(errs, verrs...)
		tables.use(key+".fields."+name+".lookup", v.lookup)
		cr.fields = append(cr.fields, v)
	}
	if mapping["time"] {
		t, terrs := compileTime(key+".time", r.Time)
		errs = append(errs, terrs...)
		cr.time = t
	}
	for i, u := range r.Unique {
		_, isTag := r.Tags[u]
		_, isField := r.Fields[u]
		if !isTag && !isField && u != "time" {
			fail(fmt.Sprintf(".unique[%d]", i), "%q is neither a tag nor a field of this rule (nor \"time\")", u)
		}
	}
	return cr, errs
}

// validTableName keeps table names plain, so messages can quote them.
func validTableName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func compileCond(c Condition) (cond, error) {
	if c.Path == "" {
		return cond{}, errors.New("path is required")
	}
	p, err := compilePath(c.Path)
	if err != nil {
		return cond{}, err
	}
	cd := cond{path: p}
	set := 0
	if len(c.Equals) > 0 {
		set++
		v := gjson.ParseBytes(bytes.TrimSpace(c.Equals))
		if v.IsObject() || v.IsArray() {
			return cond{}, errors.New("equals must be a string, number, bool or null")
		}
		cd.equals = &v
	}
	if c.Exists != nil {
		set++
		cd.exists = c.Exists
	}
	if c.Regex != "" {
		set++
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return cond{}, fmt.Errorf("regex: %v", err)
		}
		cd.regex = re
	}
	if c.In != "" {
		set++
		if !validTableName(c.In) {
			return cond{}, fmt.Errorf("in: must be a table name of letters, digits, '_' and '-', got %q", c.In)
		}
		cd.in = c.In
	}
	if set != 1 {
		return cond{}, errors.New("set exactly one of equals, exists, regex and in")
	}
	return cd, nil
}

// compileValue compiles one tag or field; key is its config key.
func compileValue(key, name string, raw json.RawMessage, tag bool) (valueRef, sdk.ConfigErrors) {
	var spec ValueSpec
	v := valueRef{name: name}
	fail := func(format string, args ...any) (valueRef, sdk.ConfigErrors) {
		return v, sdk.ConfigErrors{{Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	raw = bytes.TrimSpace(raw)
	switch got := gjson.ParseBytes(raw); {
	case got.Type == gjson.String:
		spec.Path = got.Str
	case got.Type == gjson.Number:
		// An unquoted array index in YAML: `side: 2`.
		spec.Path = got.Raw
	case got.IsObject():
		if errs := decodeStrict(raw, &spec, key); len(errs) > 0 {
			return v, errs
		}
	default:
		return fail("must be a path or {path | value, ...}, got %s", describe(got))
	}
	v.optional = spec.Optional
	if name == "" {
		return fail("name is empty")
	}
	switch {
	case (spec.Path == "") == (len(spec.Value) == 0):
		return fail("set exactly one of path and value")
	case spec.Path != "":
		p, err := compilePath(spec.Path)
		if err != nil {
			return fail("%v", err)
		}
		v.path = &p
	default:
		v.literal = gjson.ParseBytes(spec.Value)
		if !gjson.ValidBytes(spec.Value) || v.literal.IsObject() || v.literal.IsArray() || v.literal.Type == gjson.Null {
			return fail("value must be a string, number or bool")
		}
	}
	if spec.Lookup != "" {
		switch {
		case v.path == nil:
			return fail("lookup takes its key from a path, not a value")
		case !validTableName(spec.Lookup):
			return fail("lookup: must be a table name of letters, digits, '_' and '-', got %q", spec.Lookup)
		}
		v.lookup = spec.Lookup
	}
	tf, err := compileTransforms(spec)
	if err != nil {
		return fail("%v", err)
	}
	v.tf = tf
	if spec.Type != "" {
		if tag {
			return fail("a tag is always a string; type applies to fields")
		}
		k, err := sluice.ParseKind(spec.Type)
		if err != nil {
			return fail("%v", err)
		}
		v.kind = k
	}
	if spec.Map != nil {
		v.mapping = make(map[string]gjson.Result, len(spec.Map))
		for _, k := range sortedKeys(spec.Map) {
			r := spec.Map[k]
			res := gjson.ParseBytes(r)
			if !gjson.ValidBytes(r) || res.IsObject() || res.IsArray() || res.Type == gjson.Null {
				return fail("map.%s: must be a string, number or bool", k)
			}
			v.mapping[k] = res
		}
	}
	if v.path == nil {
		// Check the literal converts now rather than on every message.
		if _, _, err := v.resolve(gjson.Result{}, gjson.Result{}, tag, nil); err != nil {
			return fail("value: %v", err)
		}
	}
	return v, nil
}

func compileTime(key string, raw json.RawMessage) (*timeRef, sdk.ConfigErrors) {
	spec := TimeSpec{Format: TimeRFC3339}
	fail := func(format string, args ...any) (*timeRef, sdk.ConfigErrors) {
		return nil, sdk.ConfigErrors{{Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	switch got := gjson.ParseBytes(raw); {
	case got.Type == gjson.String:
		spec.Path = got.Str
	case got.IsObject():
		if errs := decodeStrict(raw, &spec, key); len(errs) > 0 {
			return nil, errs
		}
		if spec.Format == "" {
			spec.Format = TimeRFC3339
		}
	default:
		return fail("must be a path or {path, format, optional}, got %s", describe(got))
	}
	p, err := compilePath(spec.Path)
	if err != nil {
		return fail("%v", err)
	}
	switch spec.Format {
	case TimeUnixS, TimeUnixMs, TimeUnixUs, TimeUnixNs, TimeRFC3339:
	default:
		if err := checkLayout(spec.Format); err != nil {
			return fail("%v", err)
		}
	}
	return &timeRef{path: p, format: spec.Format, optional: spec.Optional}, nil
}

// checkLayout accepts a Go time layout that formats and parses back the
// reference time, which rules out strings with no layout elements.
func checkLayout(layout string) error {
	ref := time.Date(2009, 11, 10, 23, 1, 2, 123456789, time.UTC)
	s := ref.Format(layout)
	if s == layout {
		return fmt.Errorf("format %q is not unix_s, unix_ms, unix_us, unix_ns, rfc3339 or a Go time layout", layout)
	}
	if _, err := time.Parse(layout, s); err != nil {
		return fmt.Errorf("format %q: %v", layout, err)
	}
	return nil
}

// Map applies the rules to one message received at received, appending
// the points to dst. Rules are tried in order; the first that matches
// maps the message, and unless it has `continue`, the search stops there.
// matched reports whether any rule matched, an alive or remember rule
// included. Map never panics on any input: a message it cannot map yields
// MapErrors, and one nesting deeper than max_json_depth (default
// DefaultMaxJSONDepth) is refused whole. Map remembers nothing between
// calls; MapState keeps what rules remember in st.
func (m *Mapper) Map(msg []byte, received time.Time, dst []sluice.Point) (out []sluice.Point, errs []MapError, matched bool) {
	return m.MapState(msg, received, dst, nil)
}

// MapState is Map with st, the State of one connection: rules with
// remember store into it, lookups and `in` conditions read from it. st
// may be nil, in which case nothing is remembered.
func (m *Mapper) MapState(msg []byte, received time.Time, dst []sluice.Point, st *State) (out []sluice.Point, errs []MapError, matched bool) {
	out, errs, res := m.mapMessage(msg, received, dst, st)
	return out, errs, res.any()
}

// mapResult tells apart the kinds of rule that matched a message.
type mapResult struct {
	matched    bool // a rule that maps points
	alive      bool // an alive rule
	remembered bool // a rule that only remembers
}

func (r mapResult) any() bool { return r.matched || r.alive || r.remembered }

// mapMessage is Map telling apart the rules that matched.
func (m *Mapper) mapMessage(msg []byte, received time.Time, dst []sluice.Point, st *State) (out []sluice.Point, errs []MapError, res mapResult) {
	if tooDeep(msg, m.maxDepth) {
		return dst, []MapError{{Msg: ErrTooDeep}}, res
	}
	if !gjson.ValidBytes(msg) {
		return dst, []MapError{{Msg: ErrNotJSON}}, res
	}
	root := gjson.ParseBytes(msg)
	for _, r := range m.rules {
		ok, err := r.matches(root, st)
		if err != nil {
			errs = append(errs, *err)
			continue
		}
		if !ok {
			continue
		}
		errs = r.remember(root, st, errs)
		switch {
		case r.alive:
			res.alive = true
		case r.maps:
			res.matched = true
			dst, errs = r.apply(root, received, dst, errs, st)
		default:
			res.remembered = true
		}
		if !r.cont {
			break
		}
	}
	return dst, errs, res
}

// matches reports whether every condition holds. A panic inside gjson (a
// bug there, on some path and input) becomes a MapError, not a crash.
func (r *rule) matches(root gjson.Result, st *State) (ok bool, merr *MapError) {
	defer func() {
		if p := recover(); p != nil {
			ok, merr = false, &MapError{Rule: r.name, Msg: fmt.Sprintf("internal: panic evaluating match: %v", p)}
		}
	}()
	for i := range r.match {
		if !r.match[i].holds(root, st) {
			return false, nil
		}
	}
	return true, nil
}

func (c *cond) holds(root gjson.Result, st *State) bool {
	v := c.path.get(root, root)
	switch {
	case c.exists != nil:
		return v.Exists() == *c.exists
	case c.equals != nil:
		return v.Exists() && sameValue(v, *c.equals)
	case c.regex != nil:
		return v.Exists() && c.regex.MatchString(textOf(v))
	case c.in != "":
		return v.Exists() && !v.IsObject() && !v.IsArray() && st.has(c.in, textOf(v))
	}
	return false
}

// sameValue compares two scalars by kind and value; numbers by exact
// decimal value, so 1 equals 1.0 and two 27-digit ids differing in the
// last digit differ.
func sameValue(a, b gjson.Result) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case gjson.String:
		return a.Str == b.Str
	case gjson.Number:
		return decimalEqual(a.Raw, b.Raw)
	case gjson.True, gjson.False, gjson.Null:
		return true
	}
	return false
}

// textOf is a value as text: a string's contents, else its JSON.
func textOf(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	return v.Raw
}

func (r *rule) apply(root gjson.Result, received time.Time, dst []sluice.Point, errs []MapError, st *State) (out []sluice.Point, outErrs []MapError) {
	defer func() {
		if p := recover(); p != nil {
			out = dst
			outErrs = append(errs, MapError{Rule: r.name, Msg: fmt.Sprintf("internal: panic mapping: %v", p)})
		}
	}()
	if r.each == nil {
		p, err := r.point(root, root, received, st)
		if err != nil {
			return dst, append(errs, *err)
		}
		return append(dst, p), errs
	}
	arr := r.each.get(root, root)
	switch {
	case !arr.Exists():
		return dst, append(errs, MapError{Rule: r.name, Path: r.each.src, Msg: "missing"})
	case !arr.IsArray():
		return dst, append(errs, MapError{Rule: r.name, Path: r.each.src, Msg: "is not an array"})
	}
	i := 0
	arr.ForEach(func(_, el gjson.Result) bool {
		p, err := r.point(root, el, received, st)
		if err != nil {
			err.Msg = fmt.Sprintf("element %d: %s", i, err.Msg)
			errs = append(errs, *err)
		} else {
			dst = append(dst, p)
		}
		i++
		return true
	})
	return dst, errs
}

func (r *rule) point(root, el gjson.Result, received time.Time, st *State) (sluice.Point, *MapError) {
	fail := func(p *jpath, format string, args ...any) (sluice.Point, *MapError) {
		e := &MapError{Rule: r.name, Msg: fmt.Sprintf(format, args...)}
		if p != nil {
			e.Path = p.src
		}
		return sluice.Point{}, e
	}
	p := sluice.Point{Measurement: r.meas, Time: received, Received: received}
	if r.measPath != nil {
		v := r.measPath.get(root, el)
		if !v.Exists() {
			return fail(r.measPath, "missing")
		}
		if v.Type != gjson.String || v.Str == "" {
			return fail(r.measPath, "measurement must be a non-empty string, got %s", describe(v))
		}
		p.Measurement = v.Str
	}
	if len(r.tags) > 0 {
		p.Tags = make([]sluice.Tag, 0, len(r.tags))
	}
	for i := range r.tags {
		t := &r.tags[i]
		v, present, err := t.resolve(root, el, true, st)
		if err != nil {
			return fail(t.path, "tag %s: %v", t.name, err)
		}
		if present {
			p.Tags = append(p.Tags, sluice.Tag{Key: t.name, Value: v.Str()})
		}
	}
	p.Fields = make([]sluice.Field, 0, len(r.fields))
	for i := range r.fields {
		f := &r.fields[i]
		v, present, err := f.resolve(root, el, false, st)
		if err != nil {
			return fail(f.path, "field %s: %v", f.name, err)
		}
		if present {
			p.Fields = append(p.Fields, sluice.Field{Key: f.name, Value: v})
		}
	}
	if len(p.Fields) == 0 {
		return fail(nil, "no fields: every field is optional and missing")
	}
	if r.time != nil {
		v := r.time.path.get(root, el)
		switch {
		case !v.Exists() || v.Type == gjson.Null:
			if !r.time.optional {
				return fail(&r.time.path, "time: missing")
			}
		default:
			t, err := parseTime(v, r.time.format)
			if err != nil {
				return fail(&r.time.path, "time: %v", err)
			}
			p.Time = t
		}
	}
	return p, nil
}

// resolve reads, looks up, transforms, maps and converts one tag or
// field. present is false for an optional value that is missing or null.
func (v *valueRef) resolve(root, el gjson.Result, tag bool, st *State) (val sluice.Value, present bool, err error) {
	raw := v.literal
	if v.path != nil {
		raw = v.path.get(root, el)
		if !raw.Exists() || raw.Type == gjson.Null {
			if v.optional {
				return sluice.Value{}, false, nil
			}
			if raw.Exists() {
				return sluice.Value{}, false, errors.New("is null")
			}
			return sluice.Value{}, false, errors.New("missing")
		}
	}
	if v.lookup != "" {
		if raw.IsObject() || raw.IsArray() {
			return sluice.Value{}, false, fmt.Errorf("lookup %s: key is %s", v.lookup, describe(raw))
		}
		got, ok := st.lookup(v.lookup, textOf(raw))
		if !ok {
			if v.optional {
				return sluice.Value{}, false, nil
			}
			return sluice.Value{}, false, fmt.Errorf("lookup %s: %s is not remembered on this connection", v.lookup, describe(raw))
		}
		raw = got
	}
	if v.tf.any() {
		if raw.IsObject() || raw.IsArray() {
			return sluice.Value{}, false, fmt.Errorf("is %s; transforms take a string or number", describe(raw))
		}
		if raw, err = v.tf.apply(raw); err != nil {
			return sluice.Value{}, false, err
		}
	}
	if v.mapping != nil {
		to, ok := v.mapping[textOf(raw)]
		if !ok {
			return sluice.Value{}, false, fmt.Errorf("%s is not in map", describe(raw))
		}
		raw = to
	}
	val, err = v.convert(raw, tag)
	return val, err == nil, err
}

// convert turns a JSON scalar into a tag (a string value) or a field of
// the configured kind. Numeric strings are parsed for numeric kinds; a
// field with no type takes its kind from the JSON value, and a number
// that a float cannot hold exactly (a 27-digit id) is refused rather
// than rounded.
func (v *valueRef) convert(r gjson.Result, tag bool) (sluice.Value, error) {
	if r.IsObject() || r.IsArray() {
		if !tag && v.kind == sluice.KindString {
			return sluice.String(r.Raw), nil
		}
		return sluice.Value{}, fmt.Errorf("is %s; only type string takes an object or array (as JSON text)", describe(r))
	}
	if tag {
		return sluice.String(textOf(r)), nil
	}
	switch v.kind {
	case sluice.KindInvalid:
		switch r.Type {
		case gjson.Number:
			if !floatExact(r.Raw) {
				return sluice.Value{}, fmt.Errorf("%s does not fit a float exactly; set type: string to keep every digit (or int or uint if it is a whole number in range)", describe(r))
			}
			return toFloat(r)
		case gjson.String:
			return sluice.String(r.Str), nil
		case gjson.True, gjson.False:
			return sluice.Bool(r.Type == gjson.True), nil
		}
	case sluice.KindFloat:
		return toFloat(r)
	case sluice.KindInt:
		return toInt(r)
	case sluice.KindUint:
		return toUint(r)
	case sluice.KindString:
		return sluice.String(textOf(r)), nil
	case sluice.KindBool:
		switch {
		case r.Type == gjson.True || (r.Type == gjson.String && r.Str == "true"):
			return sluice.Bool(true), nil
		case r.Type == gjson.False || (r.Type == gjson.String && r.Str == "false"):
			return sluice.Bool(false), nil
		}
		return sluice.Value{}, fmt.Errorf("%s is not a bool", describe(r))
	}
	return sluice.Value{}, fmt.Errorf("%s cannot be a field value", describe(r))
}

// numText is the text of a number or numeric string.
func numText(r gjson.Result) (string, bool) {
	switch r.Type {
	case gjson.Number:
		return r.Raw, true
	case gjson.String:
		return strings.TrimSpace(r.Str), true
	}
	return "", false
}

func toFloat(r gjson.Result) (sluice.Value, error) {
	s, ok := numText(r)
	if !ok {
		return sluice.Value{}, fmt.Errorf("%s is not a number", describe(r))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return sluice.Value{}, fmt.Errorf("%s is not a finite float", describe(r))
	}
	return sluice.Float(f), nil
}

func toInt(r gjson.Result) (sluice.Value, error) {
	s, ok := numText(r)
	if !ok {
		return sluice.Value{}, fmt.Errorf("%s is not a number", describe(r))
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return sluice.Int(i), nil
	}
	// 1e3 or 5.0: accept when the value is exactly a whole number in
	// range (a float would round 9007199254740993.0).
	x, ok := parseDecimal(s)
	if !ok || !x.IsInt() || !x.Num().IsInt64() {
		return sluice.Value{}, fmt.Errorf("%s is not an int64", describe(r))
	}
	return sluice.Int(x.Num().Int64()), nil
}

func toUint(r gjson.Result) (sluice.Value, error) {
	s, ok := numText(r)
	if !ok {
		return sluice.Value{}, fmt.Errorf("%s is not a number", describe(r))
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return sluice.Uint(u), nil
	}
	x, ok := parseDecimal(s)
	if !ok || !x.IsInt() || x.Sign() < 0 || !x.Num().IsUint64() {
		return sluice.Value{}, fmt.Errorf("%s is not a uint64", describe(r))
	}
	return sluice.Uint(x.Num().Uint64()), nil
}

// describe names a value in an error, shortened so a huge value cannot
// flood a log line.
func describe(r gjson.Result) string {
	const max = 64
	var kind string
	switch r.Type {
	case gjson.String:
		kind = "string"
	case gjson.Number:
		kind = "number"
	case gjson.True, gjson.False:
		kind = "bool"
	case gjson.Null:
		kind = "null"
	default:
		switch {
		case r.IsObject():
			kind = "an object"
		case r.IsArray():
			kind = "an array"
		default:
			kind = "a value"
		}
		return kind
	}
	s := r.Raw
	if len(s) > max {
		s = s[:max] + "..."
	}
	return kind + " " + s
}

// parseTime reads a time value in the given format, as UTC.
func parseTime(v gjson.Result, format string) (time.Time, error) {
	switch format {
	case TimeUnixS, TimeUnixMs, TimeUnixUs, TimeUnixNs:
		s, ok := numText(v)
		if !ok {
			return time.Time{}, fmt.Errorf("%s is not a number", describe(v))
		}
		t, err := parseUnix(s, unitOf(format))
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %v", describe(v), err)
		}
		return t, nil
	}
	if v.Type != gjson.String {
		return time.Time{}, fmt.Errorf("%s is not a string", describe(v))
	}
	layout := format
	if format == TimeRFC3339 {
		layout = time.RFC3339Nano
	}
	t, err := time.Parse(layout, v.Str)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s does not match %s", describe(v), format)
	}
	return t.UTC(), nil
}

func unitOf(format string) int64 {
	switch format {
	case TimeUnixS:
		return int64(time.Second)
	case TimeUnixMs:
		return int64(time.Millisecond)
	case TimeUnixUs:
		return int64(time.Microsecond)
	}
	return 1
}

// parseUnix reads a decimal count of units (unit in ns) since the epoch
// exactly, fractions included, without going through a float; exponent
// notation falls back to a float.
func parseUnix(s string, unit int64) (time.Time, error) {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		ns := f * float64(unit)
		if err != nil || math.IsNaN(ns) || ns >= math.MaxInt64 || ns < math.MinInt64 {
			return time.Time{}, errors.New("out of range")
		}
		return time.Unix(0, int64(ns)).UTC(), nil
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || (hasFrac && (frac == "" || strings.Trim(frac, "0123456789") != "")) || intPart == "" || intPart == "-" || intPart == "+" {
		return time.Time{}, errors.New("not a decimal number")
	}
	perSec := int64(time.Second) / unit
	sec, rem := n/perSec, n%perSec
	nsec := rem * unit
	if hasFrac {
		// The fraction of one unit, to the nanosecond.
		digits := (frac + "000000000")[:9]
		f, _ := strconv.ParseInt(digits, 10, 64)
		fracNs := f * unit / int64(time.Second)
		if strings.HasPrefix(intPart, "-") {
			fracNs = -fracNs
		}
		nsec += fracNs
	}
	// Bound to what Unix nanoseconds can hold (years 1678 to 2262), as
	// every sink stores time that way.
	const maxSec = math.MaxInt64 / int64(time.Second)
	if sec > maxSec || sec < -maxSec {
		return time.Time{}, errors.New("out of range")
	}
	return time.Unix(sec, nsec).UTC(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
