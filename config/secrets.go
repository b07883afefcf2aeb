package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/secret"
)

// EnvNames lists, sorted, the environment variables the feed's plugin
// config references with ${env:NAME}. They are the only variables of the
// agent's environment that the feed's plugin process gets, besides PATH,
// HOME, the locale and the like (see agent/host).
func (f Feed) EnvNames() []string {
	var names []string
	envRefs(f.Config, nil, func(_ []string, name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	})
	slices.Sort(names)
	return names
}

// envRefs calls fn with the key path and variable name of every
// ${env:NAME} reference in the string values of a plugin config.
func envRefs(v any, path []string, fn func(path []string, name string)) {
	switch x := v.(type) {
	case string:
		for _, name := range secret.EnvNames(x) {
			fn(path, name)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			envRefs(x[k], child(path, k), fn)
		}
	case []any:
		for i, e := range x {
			envRefs(e, child(path, "["+strconv.Itoa(i)+"]"), fn)
		}
	}
}

// checkEnvRefs refuses references to the agent's own SLUICE_* variables:
// they hold the agent's secrets (sink tokens), which no plugin gets.
func (c *checker) checkEnvRefs(name string, f Feed) {
	envRefs(f.Config, []string{"feeds", name, "config"}, func(path []string, ref string) {
		if strings.HasPrefix(ref, EnvPrefix) {
			c.errs.add(&Error{File: f.File, Key: keyString(path),
				Msg: "${env:" + ref + "} names one of the agent's own " + EnvPrefix + "* variables, which no plugin gets: use a variable of another name"})
		}
	})
}

// SecretValues lists the secret values c holds: the values of secret sink
// and cluster keys (the secret tag option), the passwords and
// secret query parameters of URLs (sinks and plugin configs), and the
// values of plugin config keys that look secret (redact.SecretKey). The
// agent scrubs them from whatever it prints, as a last line of defence
// behind the code that never prints them.
func (c *Config) SecretValues() []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			// A reference is not the secret it names.
			if v != "" && !strings.Contains(v, "${") && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	for _, name := range sortedKeys(c.Sinks) {
		if v := reflect.ValueOf(c.Sinks[name].Options); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
			structSecrets(v.Elem(), add)
		}
	}
	for _, name := range sortedKeys(c.Feeds) {
		freeSecrets(c.Feeds[name].Config, false, add)
	}
	if c.Cluster != nil {
		structSecrets(reflect.ValueOf(c.Cluster).Elem(), add)
	}
	return out
}

// structSecrets passes to add the values of a sink's secret keys and the
// secrets of URLs in any of its values.
func structSecrets(v reflect.Value, add func(...string)) {
	fields, _ := fieldsOf(v.Type())
	for _, f := range fields {
		fv := v.Field(f.index)
		switch {
		case fv.Kind() == reflect.String:
			if f.opts.secret {
				add(fv.String())
			}
			add(urlSecrets(fv.String())...)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			for i := range fv.Len() {
				if f.opts.secret {
					add(fv.Index(i).String())
				}
				add(urlSecrets(fv.Index(i).String())...)
			}
		case fv.Kind() == reflect.Struct && fv.Type() != durationType:
			structSecrets(fv, add)
		}
	}
}

// freeSecrets passes to add the string values of secret-looking keys (or
// lists under them) and the secrets of URLs anywhere in a plugin config.
// A value under a secret-looking name is taken only from 8 characters on:
// "auth: basic" names a scheme, not a secret, and masking every "basic"
// would garble the log for nothing.
func freeSecrets(v any, underSecret bool, add func(...string)) {
	switch x := v.(type) {
	case string:
		if underSecret && len(x) >= minGuessedSecret {
			add(x)
		}
		if strings.Contains(x, "://") {
			add(redact.URLSecrets(x)...)
		}
	case map[string]any:
		for k, e := range x {
			freeSecrets(e, redact.SecretKey(k), add)
		}
	case []any:
		for _, e := range x {
			freeSecrets(e, underSecret, add)
		}
	}
}

// minGuessedSecret is the shortest value taken as a secret for its key's
// name alone.
const minGuessedSecret = 8
