package main

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

// TestFeedConfigLoads writes a config as the outage run does (two sinks,
// one an InfluxDB URL) and loads it with the agent's own loader: each
// setting the harness gives is what the agent reads.
func TestFeedConfigLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	c := feedConfig{dataDir: filepath.Join(dir, "data"), pluginDir: filepath.Join(dir, "plugins"), addr: "127.0.0.1:9999",
		logLevel: "error", shutdownTimeout: "2s",
		sinks:     []string{"sqlite: {type: sqlite, path: sluice.db}", `down: {type: influxdb, url: "http://127.0.0.1:1", bucket: down/}`},
		feed:      "binance",
		feedSinks: []string{"sqlite", "down"},
		ws:        "ws://127.0.0.1:2/ws", rest: "http://127.0.0.1:2/api", symbols: []string{"S0001USDT", "S0002USDT"}}
	if err := c.write(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, all.Types.Configs())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != c.dataDir || cfg.PluginDir != c.pluginDir || cfg.HTTP.Listen != c.addr || cfg.HTTP.Socket != "" ||
		cfg.Log.Level != "error" || cfg.ShutdownTimeout != 2*time.Second {
		t.Errorf("agent settings: data_dir %q, plugin_dir %q, http %+v, log %q, shutdown_timeout %v",
			cfg.DataDir, cfg.PluginDir, cfg.HTTP, cfg.Log.Level, cfg.ShutdownTimeout)
	}
	if len(cfg.Sinks) != 2 || cfg.Sinks["sqlite"].Type != "sqlite" || cfg.Sinks["down"].Type != "influxdb" {
		t.Errorf("sinks: %+v", cfg.Sinks)
	}
	f, ok := cfg.Feeds["binance"]
	if !ok || len(cfg.Feeds) != 1 {
		t.Fatalf("feeds: %+v", cfg.Feeds)
	}
	if f.Plugin != "binance" || !reflect.DeepEqual(f.Sinks, c.feedSinks) {
		t.Errorf("feed: plugin %q, sinks %v", f.Plugin, f.Sinks)
	}
	want := map[string]any{"market": "spot", "ws_url": c.ws, "rest_url": c.rest,
		"streams": []any{"trade"}, "symbols": []any{"S0001USDT", "S0002USDT"}}
	if !reflect.DeepEqual(f.Config, want) {
		t.Errorf("feed config: %#v, want %#v", f.Config, want)
	}
}
