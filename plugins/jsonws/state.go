package jsonws

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// MaxTableEntries bounds each remembered table: a server announcing
// endless channels costs at most this many entries per table. A key past
// it is not remembered and is counted as a mapping error.
const MaxTableEntries = 10000

// Remember is one entry a rule stores when it matches: the value at
// Value under the key at Key, in the table named Table. Both paths are
// read from the whole message. Bitfinex answers a subscribe with
// {"event":"subscribed","chanId":17470,"symbol":"tBTCUSD"} and then names
// only the chanId: {table: channels, key: chanId, value: symbol}.
type Remember struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

type remember struct {
	table      string
	key, value jpath
}

// State is what rules remember on one connection: tables from a key (a
// value's text: a string's contents, else its JSON) to a value, kept as
// JSON so a lookup yields it typed as in the message that supplied it.
// The source starts a new State with each connection, as the ids a
// server hands out (Bitfinex's chanId) hold only for the connection. A
// State is not safe for concurrent use.
type State struct {
	tables map[string]map[string]string
}

// NewState returns an empty State.
func NewState() *State { return &State{tables: make(map[string]map[string]string)} }

// lookup returns the value remembered under key in table.
func (s *State) lookup(table, key string) (gjson.Result, bool) {
	if s == nil {
		return gjson.Result{}, false
	}
	raw, ok := s.tables[table][key]
	if !ok {
		return gjson.Result{}, false
	}
	return gjson.Parse(raw), true
}

// has reports whether key is remembered in table.
func (s *State) has(table, key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.tables[table][key]
	return ok
}

// store remembers value under key in table; a new key past
// MaxTableEntries is refused.
func (s *State) store(table, key string, value gjson.Result) error {
	if s == nil {
		return nil
	}
	t := s.tables[table]
	if t == nil {
		t = make(map[string]string)
		s.tables[table] = t
	}
	if _, ok := t[key]; !ok && len(t) >= MaxTableEntries {
		return fmt.Errorf("table %s is full (%d entries); key %q not remembered", table, MaxTableEntries, clip([]byte(key)))
	}
	t[key] = value.Raw
	return nil
}

// Entries returns a table's entries as key → the value's JSON, for the
// sample mode and tests.
func (s *State) Entries(table string) map[string]string {
	out := make(map[string]string, len(s.tables[table]))
	for k, v := range s.tables[table] {
		out[k] = v
	}
	return out
}

// remember stores what a matched rule remembers, returning a MapError for
// each entry it could not store.
func (r *rule) remember(root gjson.Result, st *State, errs []MapError) []MapError {
	for i := range r.remembers {
		m := &r.remembers[i]
		k := m.key.get(root, root)
		v := m.value.get(root, root)
		switch {
		case !k.Exists() || k.Type == gjson.Null:
			errs = append(errs, MapError{Rule: r.name, Path: m.key.src, Msg: "remember: key missing"})
		case k.IsObject() || k.IsArray():
			errs = append(errs, MapError{Rule: r.name, Path: m.key.src, Msg: fmt.Sprintf("remember: key is %s; a key is a string, number or bool", describe(k))})
		case !v.Exists():
			errs = append(errs, MapError{Rule: r.name, Path: m.value.src, Msg: "remember: value missing"})
		default:
			if err := st.store(m.table, textOf(k), v); err != nil {
				errs = append(errs, MapError{Rule: r.name, Path: m.key.src, Msg: err.Error()})
			}
		}
	}
	return errs
}
