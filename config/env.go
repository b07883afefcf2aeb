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
	// outside is set when the name does not start with a top-level key
	// (SLUICE_BUILD, a user's own script's): it is not the config's, and
	// is left alone with a warning rather than refused.
	outside bool
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
		_, v.outside = rootSpec.keys[parts[0]]
		v.outside = !v.outside
		byName[name] = v // a later duplicate wins, as in getenv
	}
	out := make([]envVar, 0, len(byName))
	for _, name := range sortedKeys(byName) {
		out = append(out, byName[name])
	}
	return out
}

// envWarnings says which variables are left alone, and why.
func envWarnings(vars []envVar) []string {
	var out []string
	for _, v := range vars {
		if !v.outside {
			continue
		}
		msg := v.label() + ": ignored: " + EnvPrefix + " and a top-level config key start a config override (" + EnvPrefix + "LOG__LEVEL, " + EnvPrefix + "SINKS__DB__PATH); this one names none"
		rest := strings.ToLower(strings.TrimPrefix(v.name, EnvPrefix))
		for _, k := range sortedKeys(rootSpec.keys) {
			if after, ok := strings.CutPrefix(rest, k+"_"); ok && after != "" && !strings.HasPrefix(after, "_") {
				msg += "; did you mean " + EnvPrefix + strings.ToUpper(k) + "__" + strings.ToUpper(after) + "?"
				break
			}
		}
		out = append(out, msg)
	}
	return out
}

// applyEnv sets each variable's key in tree, creating mappings on the way
// and replacing whatever was there. Variables outside the config's
// namespace are skipped (envWarnings reports them).
func applyEnv(tree map[string]any, vars []envVar, org *origins, errs *errorList) {
	for _, v := range vars {
		if v.outside {
			continue
		}
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
