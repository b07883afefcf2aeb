package config_test

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
	"github.com/sluicehq/sluice/sinks/influxdb"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// loadWithEnv loads with the sink types the agent is built with, which
// testdata names.
func loadWithEnv(path string, environ []string) (*config.Config, error) {
	return config.LoadWithEnv(path, environ, all.Types.Configs())
}

// sqliteOf and influxOf are a sink's options as its type's config, or
// nil for a sink of another type.
func sqliteOf(s config.Sink) *sqlite.Config {
	c, _ := s.Options.(*sqlite.Config)
	return c
}

func influxOf(s config.Sink) *influxdb.Config {
	c, _ := s.Options.(*influxdb.Config)
	return c
}

// secret is the password and token used throughout testdata; no error and
// no rendering of a config may contain it.
const secret = "hunter2"

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update and review the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// portable replaces the absolute package directory with "." so goldens do
// not depend on where the repository is checked out.
func portable(t *testing.T, s string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(s, wd, ".")
}

// caseFiles lists the main files of testdata/dir. Each must set feeds_dir,
// so that a machine's /etc/sluice/feeds.d cannot leak into the test.
func caseFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/%s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "feeds_dir:") && !strings.Contains(string(b), "- feeds_dir:") {
			t.Fatalf("%s does not set feeds_dir", f)
		}
	}
	return files
}

func TestLoadInvalid(t *testing.T) {
	for _, path := range caseFiles(t, "invalid") {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadWithEnv(path, nil)
			if err == nil {
				t.Fatalf("loaded without error: %v", cfg)
			}
			got := portable(t, err.Error())
			if strings.Contains(got, secret) {
				t.Errorf("error shows a secret:\n%s", got)
			}
			for _, e := range unjoin(err) {
				var ce *config.Error
				if !errors.As(e, &ce) || ce.File == "" {
					t.Errorf("not a *config.Error naming a file: %#v", e)
				}
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".err", got+"\n")
		})
	}
}

func TestLoadValid(t *testing.T) {
	for _, path := range caseFiles(t, "valid") {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadWithEnv(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := portable(t, cfg.String())
			if strings.Contains(got, secret) {
				t.Errorf("String shows a secret:\n%s", got)
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".golden", got)
		})
	}
}

// TestFull checks the decoded values of testdata/valid/full.yaml that
// String does not show: files, tokens, and that paths are absolute.
func TestFull(t *testing.T) {
	t.Parallel()
	cfg, err := loadWithEnv("testdata/valid/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("File", cfg.File, "testdata/valid/full.yaml")
	check("DataDir", cfg.DataDir, filepath.Join(dir, "state"))
	check("PluginDir", cfg.PluginDir, filepath.Join(filepath.Dir(dir), "plugins"))
	check("FeedsDir", cfg.FeedsDir, filepath.Join(dir, "full.d"))
	check("local path", sqliteOf(cfg.Sinks["local"]).Path, filepath.Join(dir, "state", "sluice.db"))
	check("archive path", sqliteOf(cfg.Sinks["archive"]).Path, "/srv/archive.db")
	ix := influxOf(cfg.Sinks["influx"])
	check("token", ix.Token, secret)
	check("token_file", ix.TokenFile, filepath.Join(dir, "full.token"))
	check("ca_file", ix.TLS.CAFile, filepath.Join(dir, "ca.pem"))
	check("http", cfg.HTTP, config.HTTP{Listen: ":9999", Socket: filepath.Join(dir, "run", "sluice.sock"), TokenFile: filepath.Join(dir, "full.token"),
		AllowedHosts: []string{"sluice.example.com", "10.0.0.1"}, MaxTapClients: 2})
	check("influx pipeline", cfg.Sinks["influx"].Pipeline, config.Pipeline{
		BatchSize: 5000, FlushInterval: 250 * time.Millisecond, MaxBufferBytes: 50000,
		WhenFull: config.DropNewest, RetryInitial: time.Second, RetryMax: 5 * time.Minute,
	})
	check("archive pipeline", cfg.Sinks["archive"].Pipeline.WhenFull, config.Block)
	check("sha256 lower-cased", cfg.Plugins["synth"].SHA256, strings.Repeat("abcdef0123456789", 4))
	check("btc file", cfg.Feeds["btc"].File, "testdata/valid/full.yaml")
	check("eth file", cfg.Feeds["eth"].File, filepath.Join(dir, "full.d", "eth.yaml"))
	check("btc sinks order", cfg.Feeds["btc"].Sinks, []string{"local", "influx"})
	check("btc rate", cfg.Feeds["btc"].Config["rate"], 2.5)
	check("eth config", cfg.Feeds["eth"].Config, map[string]any{})
	check("eth defaults", []any{cfg.Feeds["eth"].QueueSize, cfg.Feeds["eth"].BatchSize, cfg.Feeds["eth"].FlushInterval},
		[]any{10000, 500, 100 * time.Millisecond})
	if len(cfg.Feeds) != 2 {
		t.Errorf("feeds = %v, want btc and eth", cfg.Feeds)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "sluice.yaml", "sinks:\n  db:\n    type: sqlite\n  influx:\n    type: influxdb\n    url: http://influx.example:8086\n    bucket: b\nfeeds:\n  f:\n    plugin: synth\n    sinks: [db]\n")
	cfg, err := loadWithEnv(path, []string{"SLUICE_FEEDS_DIR="})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	if cfg.DataDir != config.DefaultDataDir || cfg.PluginDir != config.DefaultPluginDir ||
		cfg.ShutdownTimeout != 30*time.Second || !reflect.DeepEqual(cfg.HTTP, want.HTTP) || cfg.Log != want.Log ||
		cfg.Pipeline != want.Pipeline || cfg.Limits != want.Limits || cfg.Restart != want.Restart {
		t.Errorf("top level is not the default:\n%v", cfg)
	}
	if want.FeedsDir != "/etc/sluice/feeds.d" || cfg.FeedsDir != "" {
		t.Errorf("feeds_dir: default %q, loaded %q", want.FeedsDir, cfg.FeedsDir)
	}
	shared := want.Pipeline
	shared.MaxBufferBytes = config.DefaultBufferMaxBytes / 2 // two sinks share buffer.max_bytes
	if got := cfg.Sinks["db"]; got.Pipeline != shared || *sqliteOf(got) != (sqlite.Config{Path: "/var/lib/sluice/sluice.db", BusyTimeout: 5 * time.Second}) || influxOf(got) != nil {
		t.Errorf("sqlite sink = %+v %+v", got, sqliteOf(got))
	}
	if got := influxOf(cfg.Sinks["influx"]); got.Precision != "ns" || !got.Gzip || got.Timeout != 10*time.Second || got.Token != "" {
		t.Errorf("influxdb sink = %v", got)
	}
	f := cfg.Feeds["f"]
	if f.QueueSize != 10000 || f.BatchSize != 500 || f.FlushInterval != 100*time.Millisecond || f.File != path || f.Config == nil {
		t.Errorf("feed = %#v", f)
	}
}

// flush_interval may be 0 ("write as soon as the sink is free"), as a
// bare 0 or a duration, at the top level and as a sink's override.
func TestFlushIntervalZero(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "sluice.yaml", "pipeline:\n  flush_interval: 2s\nsinks:\n  a:\n    type: sqlite\n    flush_interval: 0\n  b:\n    type: sqlite\n    path: b.db\n    flush_interval: 0s\n  c:\n    type: sqlite\n    path: c.db\n")
	cfg, err := loadWithEnv(path, []string{"SLUICE_FEEDS_DIR="})
	if err != nil {
		t.Fatal(err)
	}
	if got := [...]time.Duration{cfg.Sinks["a"].Pipeline.FlushInterval, cfg.Sinks["b"].Pipeline.FlushInterval, cfg.Sinks["c"].Pipeline.FlushInterval}; got != [...]time.Duration{0, 0, 2 * time.Second} {
		t.Errorf("flush intervals a, b, c = %v, want 0, 0, 2s", got)
	}
}

// gzip defaults to off for an InfluxDB on this host, on elsewhere, and
// is what the file says when it says.
func TestInfluxGzipDefault(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		url, gzip string
		want      bool
	}{
		"localhost": {"http://localhost:8086", "", false},
		"ipv4":      {"http://127.0.0.2:8086", "", false},
		"ipv6":      {"http://[::1]:8086", "", false},
		"remote":    {"https://eu-central-1-1.aws.cloud2.influxdata.com", "", true},
		"lan":       {"http://10.0.0.7:8086", "", true},
		"set_on":    {"http://127.0.0.1:8086", "true", true},
		"set_off":   {"http://influx.example:8086", "false", false},
	}
	var yaml strings.Builder
	yaml.WriteString("sinks:\n")
	for name, c := range cases {
		fmt.Fprintf(&yaml, "  %q:\n    type: influxdb\n    url: %q\n    bucket: b\n", name, c.url)
		if c.gzip != "" {
			fmt.Fprintf(&yaml, "    gzip: %s\n", c.gzip)
		}
	}
	cfg, err := loadWithEnv(writeFile(t, t.TempDir(), "sluice.yaml", yaml.String()), []string{"SLUICE_FEEDS_DIR="})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cases {
		if got := influxOf(cfg.Sinks[name]).Gzip; got != c.want {
			t.Errorf("%s (%s, gzip %q): gzip = %v, want %v", name, c.url, c.gzip, got, c.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Parallel()
	if config.DefaultPath != "/etc/sluice/sluice.yaml" {
		t.Fatalf("DefaultPath = %q", config.DefaultPath)
	}
	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Skip("this machine has a real config")
	}
	_, err := loadWithEnv("", nil)
	want := "/etc/sluice/sluice.yaml: cannot read: no such file or directory"
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want %q wrapping fs.ErrNotExist", err, want)
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "feeds.d/eth.yaml", "feeds:\n  eth:\n    plugin: synth\n    sinks: [db]\n")
	main := writeFile(t, dir, "sluice.yaml", `
feeds_dir: elsewhere
pipeline:
  batch_size: 10
sinks:
  db:
    type: sqlite
  influx:
    type: influxdb
    url: http://localhost:8086
    bucket: b
feeds:
  btc:
    plugin: synth
    sinks: [db]
    config:
      symbols: [A]
`)
	cfg, err := loadWithEnv(main, []string{
		"HOME=/root",
		"SLUICE_FEEDS_DIR=feeds.d",
		"SLUICE_PIPELINE__BATCH_SIZE= 20 ",
		"SLUICE_PIPELINE__FLUSH_INTERVAL=5s",
		"SLUICE_SINKS__INFLUX__TOKEN=" + secret,
		"SLUICE_SINKS__INFLUX__GZIP=false",
		"SLUICE_SINKS__DB__WHEN_FULL=drop_oldest",
		"SLUICE_SINKS__NEW__TYPE=sqlite",
		"SLUICE_SINKS__NEW__PATH=new.db",
		"SLUICE_FEEDS__BTC__SINKS=db, influx,new",
		"SLUICE_FEEDS__BTC__CONFIG__RATE=2.5",
		"SLUICE_FEEDS__BTC__CONFIG__NAME=010",
		`SLUICE_FEEDS__BTC__CONFIG__SYMBOLS=["X", "Y"]`,
		`SLUICE_FEEDS__BTC__CONFIG__LIMITS={"max": 3, "on": true}`,
		"SLUICE_FEEDS__ETH__QUEUE_SIZE=7",
		"SLUICE_LOG__LEVEL=debug",
		"SLUICE_LOG__LEVEL=warn", // the later duplicate wins
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("feeds dir", cfg.FeedsDir, filepath.Join(dir, "feeds.d"))
	check("batch_size", cfg.Pipeline.BatchSize, 20)
	check("flush_interval", cfg.Pipeline.FlushInterval, 5*time.Second)
	check("token", influxOf(cfg.Sinks["influx"]).Token, secret)
	check("gzip", influxOf(cfg.Sinks["influx"]).Gzip, false)
	check("db when_full", cfg.Sinks["db"].Pipeline.WhenFull, config.DropOldest)
	check("db batch_size", cfg.Sinks["db"].Pipeline.BatchSize, 20)
	check("new sink", sqliteOf(cfg.Sinks["new"]).Path, "/var/lib/sluice/new.db")
	check("btc sinks", cfg.Feeds["btc"].Sinks, []string{"db", "influx", "new"})
	check("btc config", cfg.Feeds["btc"].Config, map[string]any{
		"symbols": []any{"X", "Y"}, "rate": 2.5, "name": "010", "limits": map[string]any{"max": 3, "on": true},
	})
	check("eth queue_size", cfg.Feeds["eth"].QueueSize, 7)
	check("eth file", cfg.Feeds["eth"].File, filepath.Join(dir, "feeds.d", "eth.yaml"))
	check("log level", cfg.Log.Level, "warn")
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	main := writeFile(t, t.TempDir(), "sluice.yaml", "feeds_dir: \"\"\nsinks:\n  db:\n    type: sqlite\n")
	_, err := loadWithEnv(main, []string{
		"SLUICE_PIPELINE__BATCH_SIZE=abc",
		"SLUICE_PIPELINE__FLUSH_INTERVAL=5",
		"SLUICE_SINKS__DB__GZIP=true",
		"SLUICE_SINKS__INFLUX__URL=http://localhost:8086",
		"SLUICE_SINKS__INFLUX__TOKEN=" + secret,
		"SLUICE_SINKS__INFLUX__TIMEOUT=soon",
		"SLUICE_HTTP=x",
		"SLUICE_LOG__VERBOSE=yes",
		"SLUICE_LOG____LEVEL=debug",
		"SLUICE_FEEDS__BTC__PLUGIN=synth",
	})
	want := `env SLUICE_FEEDS__BTC__PLUGIN: feeds.btc.sinks: missing required key
env SLUICE_HTTP: http: must be a mapping, got a string
env SLUICE_LOG__VERBOSE: log.verbose: unknown key
env SLUICE_LOG____LEVEL: does not name a config key: use "__" between levels, as in SLUICE_HTTP__LISTEN
env SLUICE_PIPELINE__BATCH_SIZE: pipeline.batch_size: must be a positive integer, got a string
env SLUICE_PIPELINE__FLUSH_INTERVAL: pipeline.flush_interval: must be 0 or a positive duration such as "500ms", "30s" or "5m", got a string
env SLUICE_SINKS__DB__GZIP: sinks.db.gzip: only valid for sinks of type influxdb, this sink has type sqlite
env SLUICE_SINKS__INFLUX__TIMEOUT: sinks.influx.timeout: must be a positive duration such as "500ms", "30s" or "5m", got a string
env SLUICE_SINKS__INFLUX__TIMEOUT: sinks.influx.type: missing required key`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// Variables under the prefix that do not start with a top-level key are
// not the config's (a user's scripts use SLUICE_ too): they are ignored
// with a warning, with a hint for a near miss, while the config's own
// namespace stays strict.
func TestEnvOutsideNamespace(t *testing.T) {
	t.Parallel()
	main := writeFile(t, t.TempDir(), "sluice.yaml", "feeds_dir: \"\"\nsinks:\n  db:\n    type: sqlite\n")
	cfg, err := loadWithEnv(main, []string{
		"SLUICE_BUILD=42",
		"SLUICE_=1",
		"SLUICE_LOG_LEVEL=debug",
		"SLUICE_INFLUXD=/opt/influxd",
		"SLUICE_LOG__LEVEL=warn",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("log level %q: the override in the namespace was not applied", cfg.Log.Level)
	}
	want := []string{
		`env SLUICE_: ignored: SLUICE_ and a top-level config key start a config override (SLUICE_LOG__LEVEL, SLUICE_SINKS__DB__PATH); this one names none`,
		`env SLUICE_BUILD: ignored: SLUICE_ and a top-level config key start a config override (SLUICE_LOG__LEVEL, SLUICE_SINKS__DB__PATH); this one names none`,
		`env SLUICE_INFLUXD: ignored: SLUICE_ and a top-level config key start a config override (SLUICE_LOG__LEVEL, SLUICE_SINKS__DB__PATH); this one names none`,
		`env SLUICE_LOG_LEVEL: ignored: SLUICE_ and a top-level config key start a config override (SLUICE_LOG__LEVEL, SLUICE_SINKS__DB__PATH); this one names none; did you mean SLUICE_LOG__LEVEL?`,
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
	// In the namespace, a key that does not exist is still an error.
	if _, err := loadWithEnv(main, []string{"SLUICE_LOG__LEVL=debug"}); err == nil || err.Error() != `env SLUICE_LOG__LEVL: log.levl: unknown key (did you mean "level"?)` {
		t.Errorf("unknown key in the namespace: %v", err)
	}
}

func TestDropIns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := writeFile(t, dir, "sluice.yaml", "feeds_dir: d\nsinks:\n  db: {type: sqlite}\nfeeds:\n  a: {plugin: synth, sinks: [db]}\n")
	writeFile(t, dir, "d/20-c.yml", "feeds:\n  c: {plugin: synth, sinks: [db]}\n")
	writeFile(t, dir, "d/10-b.yaml", "# only comments\nfeeds:\n  b: {plugin: synth, sinks: [db]}\n  b2: {plugin: synth, sinks: [db]}\n")
	writeFile(t, dir, "d/empty.yaml", "")
	writeFile(t, dir, "d/.swap.yaml", "feeds:\n  a: {plugin: synth, sinks: [db]}\n")
	writeFile(t, dir, "d/notes.txt", "feeds: [")
	writeFile(t, dir, "d/sub.yaml/x.yaml", "feeds:\n  a: {plugin: synth, sinks: [db]}\n")
	cfg, err := loadWithEnv(main, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a":  main,
		"b":  filepath.Join(dir, "d", "10-b.yaml"),
		"b2": filepath.Join(dir, "d", "10-b.yaml"),
		"c":  filepath.Join(dir, "d", "20-c.yml"),
	}
	got := make(map[string]string)
	for name, f := range cfg.Feeds {
		got[name] = f.File
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("feed files = %v, want %v", got, want)
	}

	// The same name in two files names both, whichever pair it is.
	writeFile(t, dir, "d/30-dup.yaml", "feeds:\n  a: {plugin: synth, sinks: [db]}\n  c: {plugin: synth, sinks: [db]}\n")
	_, err = loadWithEnv(main, nil)
	wantErr := fmt.Sprintf("%[1]s/d/30-dup.yaml: feeds.a: already defined in %[2]s\n%[1]s/d/30-dup.yaml: feeds.c: already defined in %[1]s/d/20-c.yml", dir, main)
	if err == nil || err.Error() != wantErr {
		t.Errorf("got:\n%v\nwant:\n%s", err, wantErr)
	}
}

func TestFeedsDirMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := writeFile(t, dir, "sluice.yaml", "feeds_dir: nowhere\n")
	cfg, err := loadWithEnv(main, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Feeds) != 0 || cfg.FeedsDir != filepath.Join(dir, "nowhere") {
		t.Errorf("feeds %v from %q", cfg.Feeds, cfg.FeedsDir)
	}

	notDir := writeFile(t, dir, "file.yaml", "feeds_dir: sluice.yaml\n")
	_, err = loadWithEnv(notDir, nil)
	if want := notDir + ": feeds_dir: cannot read feeds directory: not a directory"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestLoadFeedsDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "feeds:\n  a: {plugin: synth, sinks: [db], batch_size: 5}\n")
	writeFile(t, dir, "b.yaml", "feeds:\n  b: {plugin: synth, sinks: [anything]}\n")
	feeds, err := config.LoadFeedsDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(feeds) != 2 || feeds["a"].BatchSize != 5 || feeds["a"].QueueSize != 10000 || feeds["b"].File != filepath.Join(dir, "b.yaml") {
		t.Errorf("feeds = %+v", feeds)
	}

	writeFile(t, dir, "c.yaml", "feeds:\n  a: {plugin: synth, sinks: [db]}\n  c: {sinks: [db], queue_size: x}\n")
	_, err = config.LoadFeedsDir(dir)
	want := fmt.Sprintf(`%[1]s/c.yaml: feeds.a: already defined in %[1]s/a.yaml
%[1]s/c.yaml: feeds.c.plugin: missing required key
%[1]s/c.yaml: feeds.c.queue_size: must be a positive integer, got "x"`, dir)
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}

	feeds, err = config.LoadFeedsDir(filepath.Join(dir, "missing"))
	if err != nil || len(feeds) != 0 {
		t.Errorf("missing dir: %v, %v", feeds, err)
	}
}

func TestReloadFeeds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := writeFile(t, dir, "sluice.yaml", "feeds_dir: d\nsinks:\n  db: {type: sqlite}\n")
	writeFile(t, dir, "d/a.yaml", "feeds:\n  a: {plugin: synth, sinks: [db]}\n")
	env := []string{"SLUICE_FEEDS__A__BATCH_SIZE=3"}
	cfg, err := loadWithEnv(main, env)
	if err != nil {
		t.Fatal(err)
	}

	// The main file changes too, but only the directory is re-read.
	writeFile(t, dir, "sluice.yaml", "feeds_dir: d\n")
	writeFile(t, dir, "d/b.yaml", "feeds:\n  b: {plugin: synth, sinks: [db]}\n")
	next, err := cfg.ReloadFeeds()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Feeds) != 1 || len(next.Feeds) != 2 || next.Feeds["a"].BatchSize != 3 || len(next.Sinks) != 1 {
		t.Errorf("before %v, after %v", cfg.Feeds, next.Feeds)
	}

	writeFile(t, dir, "d/c.yaml", "feeds:\n  c: {plugin: synth, sinks: [nope]}\n")
	_, err = next.ReloadFeeds()
	if want := filepath.Join(dir, "d", "c.yaml") + `: feeds.c.sinks: unknown sink "nope" (defined: db)`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}

	if _, err := config.Default().ReloadFeeds(); err == nil {
		t.Error("reloading a config not loaded from a file succeeded")
	}
}

func TestTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secrets/influx.token", "\n  "+secret+"\t\n")
	main := writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\nsinks:\n  influx:\n    type: influxdb\n    url: http://localhost:8086\n    bucket: b\n    token_file: secrets/influx.token\n")
	cfg, err := loadWithEnv(main, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := influxOf(cfg.Sinks["influx"]).Token; got != secret {
		t.Errorf("token = %q", got)
	}

	// A token file given by the environment is found relative to the
	// main file too.
	writeFile(t, dir, "other.token", "other")
	cfg, err = loadWithEnv(main, []string{"SLUICE_SINKS__INFLUX__TOKEN_FILE=other.token"})
	if err != nil || influxOf(cfg.Sinks["influx"]).Token != "other" {
		t.Errorf("token from env-named file: %v", err)
	}

	_, err = loadWithEnv(main, []string{"SLUICE_SINKS__INFLUX__TOKEN_FILE=/nonexistent/token"})
	want := "env SLUICE_SINKS__INFLUX__TOKEN_FILE: sinks.influx.token_file: cannot read token file: open /nonexistent/token: no such file or directory"
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want %s wrapping fs.ErrNotExist", err, want)
	}

	_, err = loadWithEnv(main, []string{"SLUICE_SINKS__INFLUX__TOKEN=" + secret})
	want = "env SLUICE_SINKS__INFLUX__TOKEN: sinks.influx.token: cannot be set together with token_file"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestRedaction checks that a loaded secret shows in no rendering of the
// config and that Redacted leaves the original alone.
func TestRedaction(t *testing.T) {
	t.Parallel()
	cfg, err := loadWithEnv("testdata/valid/full.yaml", []string{
		"SLUICE_SINKS__INFLUX__URL=https://user:" + secret + "@influx.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	ix := influxOf(cfg.Sinks["influx"])
	for _, s := range []string{
		cfg.String(),
		cfg.Redacted().String(),
		fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", *cfg),
		fmt.Sprint(ix), fmt.Sprintf("%+v", *ix), fmt.Sprintf("%#v", *ix), fmt.Sprintf("%#v", ix),
		fmt.Sprintf("%+v", cfg.Redacted().Feeds),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("secret shown in:\n%s", s)
		}
		if !strings.Contains(s, config.Redaction) {
			t.Errorf("no %s in:\n%s", config.Redaction, s)
		}
	}
	if ix.Token != secret || cfg.Feeds["btc"].Config["api_key"] != secret || !strings.Contains(ix.URL, secret) {
		t.Error("Redacted changed the original")
	}
	r := cfg.Redacted()
	if got := r.Feeds["btc"].Config["nested"]; fmt.Sprint(got) != "map[password:REDACTED]" {
		t.Errorf("nested feed secret: %v", got)
	}
	if r.Feeds["btc"].Config["rate"] != 2.5 || influxOf(r.Sinks["influx"]).Bucket != "telemetry/autogen" {
		t.Error("Redacted dropped more than secrets")
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	cause := errors.New("boom")
	e := &config.Error{File: "/etc/sluice/sluice.yaml", Key: "sinks.db.batch_size", Msg: `must be a positive integer, got "abc"`, Err: cause}
	if got, want := e.Error(), `/etc/sluice/sluice.yaml: sinks.db.batch_size: must be a positive integer, got "abc"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, cause) {
		t.Error("Error does not unwrap")
	}
	if got, want := (&config.Error{File: "f.yaml", Msg: "m"}).Error(), "f.yaml: m"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestExample(t *testing.T) {
	t.Parallel()
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadWithEnv("sluice.example.yaml", []string{"SLUICE_FEEDS_DIR=" + examples})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Sinks["sqlite"]; s.Type != "sqlite" || sqliteOf(s) == nil || len(cfg.Sinks) != 1 {
		t.Errorf("sinks = %v, want the one sqlite sink", cfg.Sinks)
	}
	f := cfg.Feeds["synth"]
	if f.Plugin != "synth" || !slices.Equal(f.Sinks, []string{"sqlite"}) || f.Config["rate"] != 10 || f.File != filepath.Join(examples, "synth.yaml") {
		t.Errorf("synth feed = %#v", f)
	}
	// Apart from what the comments call overrides, the example shows the
	// defaults.
	def := config.Default()
	if cfg.Pipeline != def.Pipeline || cfg.Limits != def.Limits || cfg.Restart != def.Restart || !reflect.DeepEqual(cfg.HTTP, def.HTTP) || cfg.Log != def.Log {
		t.Errorf("example does not show the defaults:\n%v", cfg)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Sinks without their own max_buffer_bytes share what buffer.max_bytes
// leaves after those that set one.
func TestBufferShares(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
buffer: {max_bytes: 100000000}
sinks:
  a: {type: sqlite, max_buffer_bytes: 40000000}
  b: {type: sqlite, path: b.db}
  c: {type: sqlite, path: c.db}
`)
	cfg, err := loadWithEnv(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"a": 40000000, "b": 30000000, "c": 30000000} {
		if got := cfg.Sinks[name].Pipeline.MaxBufferBytes; got != want {
			t.Errorf("sink %s: max_buffer_bytes %d, want %d", name, got, want)
		}
	}

	// Too little left to share is an error at buffer.max_bytes.
	path = writeFile(t, dir, "small.yaml", `feeds_dir: ""
buffer: {max_bytes: 41000000}
sinks:
  a: {type: sqlite, max_buffer_bytes: 40000000}
  b: {type: sqlite, path: b.db}
`)
	_, err = loadWithEnv(path, nil)
	if err == nil || !strings.Contains(err.Error(), "small.yaml: buffer.max_bytes: leaves 1000000 bytes") {
		t.Errorf("error = %v", err)
	}
}
