package config

import (
	"slices"
	"strings"
)

// envVar is one SLUICE_* variable and the key path it sets.
type envVar struct {
	name  string   // the full variable name
	value string   // always a string; the walker converts it
	path  []string // nil when the name maps to no key
}

func (v envVar) label() string { return "env " + v.name }

// parseEnv picks the SLUICE_* variables out of environ, sorted by name so
// that overrides apply in a fixed order. "__" separates levels and names
// are lower-cased: SLUICE_SINKS__INFLUX__TOKEN is sinks.influx.token.
func parseEnv(environ []string) []envVar {
	byName := make(map[string]envVar)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		v := envVar{name: name, value: value}
		parts := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__")
		if !slices.Contains(parts, "") {
			v.path = parts
		}
		byName[name] = v // a later duplicate wins, as in getenv
	}
	out := make([]envVar, 0, len(byName))
	for _, name := range sortedKeys(byName) {
		out = append(out, byName[name])
	}
	return out
}

// applyEnv sets each variable's key in tree, creating mappings on the way
// and replacing whatever was there.
func applyEnv(tree map[string]any, vars []envVar, org *origins, errs *errorList) {
	for _, v := range vars {
		if v.path == nil {
			errs.add(&Error{File: v.label(), Msg: `does not name a config key: use "__" between levels, as in SLUICE_HTTP__LISTEN`})
			continue
		}
		from := origin{name: v.label(), env: true}
		node := tree
		for i, k := range v.path[:len(v.path)-1] {
			next, ok := node[k].(map[string]any)
			if !ok {
				next = make(map[string]any)
				node[k] = next
				// Problems with a mapping only this variable created,
				// such as a missing required key, are reported against it.
				org.set(v.path[:i+1], from)
			}
			node = next
		}
		node[v.path[len(v.path)-1]] = v.value
		org.set(v.path, from)
	}
}
