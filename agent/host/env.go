package host

import (
	"slices"
	"strings"
)

// baseEnv are the variables every plugin gets from the agent's
// environment, when set: what any program expects (PATH, HOME, TZ,
// TMPDIR), the locale, and what outgoing connections honour (the proxy
// variables, which plugins read with http.ProxyFromEnvironment, and Go's
// CA bundle overrides).
var baseEnv = []string{
	"PATH", "HOME", "TZ", "TMPDIR", "LANG", "LANGUAGE",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// agentPrefix starts the agent's own variables (config.EnvPrefix), which
// hold its secrets, such as sink tokens. No plugin gets them.
const agentPrefix = "SLUICE_"

// PluginEnv returns, from environ ("NAME=value" strings, as os.Environ),
// the environment of a plugin process: the variables of baseEnv, the
// locale's LC_*, and the variables named in names (a feed's ${env:NAME}
// references, config.Feed.EnvNames). Every other variable of the agent
// stays in the agent, and SLUICE_* variables always do. Launch adds the
// go-plugin handshake variables and the plugin's log level.
func PluginEnv(environ []string, names []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || strings.HasPrefix(name, agentPrefix) {
			continue
		}
		if slices.Contains(baseEnv, name) || strings.HasPrefix(name, "LC_") || slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
