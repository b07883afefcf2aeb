package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// feedConfig is an agent config file with one feed of Binance spot
// trades from the simulated exchange: the shape every Sluice run of this
// harness uses. The agent serves its HTTP API on addr only (no unix
// socket).
type feedConfig struct {
	dataDir, pluginDir, addr string
	logLevel                 string // warn when empty
	shutdownTimeout          string // the agent's default when empty
	// sinks are the sinks section's entries, one line each in flow
	// style: `sqlite: {type: sqlite, path: sluice.db}`.
	sinks     []string
	feed      string // the feed's name
	feedSinks []string
	ws, rest  string
	symbols   []string
}

func (c feedConfig) write(path string) error {
	var b strings.Builder
	level := c.logLevel
	if level == "" {
		level = "warn"
	}
	fmt.Fprintf(&b, "data_dir: %s\nplugin_dir: %s\nhttp: {listen: %q, socket: \"\"}\nlog: {level: %s}\n", c.dataDir, c.pluginDir, c.addr, level)
	if c.shutdownTimeout != "" {
		fmt.Fprintf(&b, "shutdown_timeout: %s\n", c.shutdownTimeout)
	}
	b.WriteString("sinks:\n")
	for _, s := range c.sinks {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	symList, _ := json.Marshal(c.symbols)
	fmt.Fprintf(&b, `feeds:
  %s:
    plugin: binance
    sinks: [%s]
    config:
      market: spot
      ws_url: %s
      rest_url: %s
      streams: [trade]
      symbols: %s
`, c.feed, strings.Join(c.feedSinks, ", "), c.ws, c.rest, symList)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
