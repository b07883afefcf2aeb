package all_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

// Every type listed has a name of its own and a config struct the loader
// can use; a type added here with a broken struct fails here first.
func TestTypes(t *testing.T) {
	seen := make(map[string]bool)
	for _, typ := range all.Types {
		if typ.Name == "" || typ.NewConfig == nil || typ.New == nil {
			t.Errorf("incomplete type %+v", typ)
		}
		if seen[typ.Name] {
			t.Errorf("type %s is listed twice", typ.Name)
		}
		seen[typ.Name] = true
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte("feeds_dir: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadWithEnv(path, nil, all.Types.Configs()); err != nil {
		t.Fatal(err)
	}
}

// Each sink type's pipeline settings, as a main file that sets none gives
// them: batches spaced by the flush interval for the stores, sent at once
// for the live sink.
func TestPipelineDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	main := `feeds_dir: ""
sinks:
  db: {type: sqlite, path: db.sqlite}
  tsdb: {type: influxdb, url: "http://127.0.0.1:8086", bucket: b}
  browsers: {type: live, listen: "127.0.0.1:0", anonymous_channels: ["*"]}
`
	if err := os.WriteFile(path, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWithEnv(path, nil, all.Types.Configs())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"db": 100 * time.Millisecond, "tsdb": 100 * time.Millisecond, "browsers": 0} {
		if got := cfg.Sinks[name].Pipeline.FlushInterval; got != want {
			t.Errorf("sinks.%s flush_interval %v, want %v", name, got, want)
		}
	}
}
