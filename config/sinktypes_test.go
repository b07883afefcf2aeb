package config_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/all"
)

// queueConfig is the config of a sink type the agent is not built with,
// declared as a sink package declares its own: the loader knows it only
// through its tags and methods.
type queueConfig struct {
	Endpoint     string        `config:"endpoint,required" doc:"host:port of the queue"`
	Mode         string        `config:"mode,oneof=fast|safe" doc:"delivery mode"`
	Label        string        `config:"label,empty" doc:"a label; may be empty"`
	Password     string        `config:"password,empty,secret" doc:"the password"`
	PasswordFile string        `config:"password_file,path=config_dir,secretfile=password" doc:"a file holding the password"`
	Spool        string        `config:"spool,path=data_dir" doc:"spool directory"`
	Retries      int           `config:"retries,zero" doc:"retries; 0 for none"`
	Wait         time.Duration `config:"wait" doc:"wait between retries"`
	Subjects     []string      `config:"subjects" doc:"subjects to publish on"`
	Compress     bool          `config:"compress" doc:"compress; default: for a remote endpoint only"`
	Window       queueWindow   `config:"window" doc:"flow control"`
	Internal     int           // no config tag: not a key
}

type queueWindow struct {
	MaxBytes int64 `config:"max_bytes" doc:"most bytes in flight"`
	Low      int   `config:"low" doc:"resume below this many messages"`
	High     int   `config:"high" doc:"pause at this many messages"`
}

func defaultQueue() any {
	return &queueConfig{Mode: "safe", Spool: "queue", Retries: 3, Wait: time.Second, Window: queueWindow{MaxBytes: 1 << 20, Low: 10, High: 100}}
}

func (c *queueConfig) Complete(set func(key string) bool) {
	if !set("compress") {
		c.Compress = !strings.HasPrefix(c.Endpoint, "localhost:")
	}
}

func (c *queueConfig) Validate() error {
	var errs []error
	if !strings.Contains(c.Endpoint, ":") {
		errs = append(errs, sinks.FieldErrorf("endpoint", "must be host:port, got %q", c.Endpoint))
	}
	if c.Window.Low > c.Window.High {
		errs = append(errs, sinks.FieldErrorf("window.low", "must not exceed window.high (%d), got %d", c.Window.High, c.Window.Low))
	}
	if c.Mode == "fast" && c.Retries > 0 {
		errs = append(errs, errors.New("mode fast does not retry: set retries to 0"))
	}
	return errors.Join(errs...)
}

// withQueue is the agent's sink types plus queue.
func withQueue() config.SinkTypes {
	types := config.SinkTypes(all.Types.Configs())
	types["queue"] = defaultQueue
	return types
}

func queueOf(s config.Sink) *queueConfig {
	c, _ := s.Options.(*queueConfig)
	return c
}

// A sink type is its config struct: defaults, key types, paths, secret
// files, nested sections, environment overrides, Complete and the
// renderings all come from the struct the type hands the loader.
func TestSinkTypeFromItsStruct(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "secrets/queue.pw", "\n"+canary+"\n")
	path := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
data_dir: state
sinks:
  q:
    type: queue
    endpoint: queue.example:4222
    mode: fast
    label: ""
    password_file: secrets/queue.pw
    retries: 0
    subjects: [a, b]
    window: {high: 50}
    batch_size: 7
  local:
    type: queue
    endpoint: localhost:4222
    spool: /srv/spool
  db:
    type: sqlite
`)
	cfg, err := config.LoadWithEnv(path, []string{"SLUICE_SINKS__LOCAL__WINDOW__MAX_BYTES=2048", "SLUICE_SINKS__LOCAL__SUBJECTS=x, y"}, withQueue())
	if err != nil {
		t.Fatal(err)
	}
	q, local := queueOf(cfg.Sinks["q"]), queueOf(cfg.Sinks["local"])
	if q == nil || local == nil || cfg.Sinks["q"].Type != "queue" {
		t.Fatalf("sinks = %v", cfg.Sinks)
	}
	want := &queueConfig{
		Endpoint: "queue.example:4222", Mode: "fast", Password: canary, PasswordFile: filepath.Join(dir, "secrets", "queue.pw"),
		Spool: filepath.Join(dir, "state", "queue"), Wait: time.Second, Subjects: []string{"a", "b"}, Compress: true,
		Window: queueWindow{MaxBytes: 1 << 20, Low: 10, High: 50},
	}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("q =\n%#v\nwant\n%#v", q, want)
	}
	want = &queueConfig{
		Endpoint: "localhost:4222", Mode: "safe", Spool: "/srv/spool", Retries: 3, Wait: time.Second, Subjects: []string{"x", "y"},
		Window: queueWindow{MaxBytes: 2048, Low: 10, High: 100},
	}
	if !reflect.DeepEqual(local, want) {
		t.Errorf("local =\n%#v\nwant\n%#v", local, want)
	}
	if p := cfg.Sinks["q"].Pipeline; p.BatchSize != 7 || p.WhenFull != config.Block {
		t.Errorf("q pipeline = %+v", p)
	}

	out := cfg.String()
	for _, s := range []string{"password: REDACTED", "endpoint: queue.example:4222", "max_bytes: 2048", "spool: /srv/spool"} {
		if !strings.Contains(out, s) {
			t.Errorf("String lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, canary) || strings.Contains(fmt.Sprint(cfg.Redacted().Sinks["q"].Options), canary) {
		t.Errorf("a rendering shows the password:\n%s", out)
	}
	if q.Password != canary {
		t.Error("Redacted changed the original")
	}
	if !slices.Contains(cfg.SecretValues(), canary) {
		t.Errorf("SecretValues = %q, want the password in it", cfg.SecretValues())
	}
}

// Problems with a sink of a type config has never heard of are reported
// as for the built-in ones: every one, each with its file and key; a
// value from the environment is never quoted; what the walker reported is
// not reported again by Validate.
func TestSinkTypeErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "empty.pw", " \n")
	path := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
sinks:
  nohost:
    type: queue
    mode: slow
    label: 5
    spool: ""
    wait: 0s
    retries: -1
    subjekt: [a]
    path: x.db
  both:
    type: queue
    endpoint: h:1
    password: x
    password_file: x.pw
  empty:
    type: queue
    endpoint: h:1
    password_file: empty.pw
  checked:
    type: queue
    endpoint: nocolon
    mode: fast
    window: {low: 5, high: 2, size: 1}
  envhost:
    type: queue
  bad:
    type: kafka
    endpoint: nocolon
`)
	_, err := config.LoadWithEnv(path, []string{"SLUICE_SINKS__ENVHOST__ENDPOINT=" + canary}, withQueue())
	if err == nil {
		t.Fatal("loaded")
	}
	want := fmt.Sprintf(`%[1]s: sinks.bad.endpoint: must be host:port, got "nocolon"
%[1]s: sinks.bad.type: must be a known sink type (influxdb, live, nats, queue, sqlite), got "kafka"
%[1]s: sinks.both.password_file: cannot be set together with password
%[1]s: sinks.checked: mode fast does not retry: set retries to 0
%[1]s: sinks.checked.endpoint: must be host:port, got "nocolon"
%[1]s: sinks.checked.window.low: must not exceed window.high (2), got 5
%[1]s: sinks.checked.window.size: unknown key
%[1]s: sinks.empty.password_file: password file %[2]s/empty.pw is empty
%[1]s: sinks.nohost.endpoint: missing required key (for sinks of type queue)
%[1]s: sinks.nohost.label: must be a string, got 5 (quote the value to make it a string)
%[1]s: sinks.nohost.mode: must be one of "fast", "safe", got "slow"
%[1]s: sinks.nohost.path: only valid for sinks of type sqlite, this sink has type queue
%[1]s: sinks.nohost.retries: must be 0 or a positive integer, got -1
%[1]s: sinks.nohost.spool: must not be empty
%[1]s: sinks.nohost.subjekt: unknown key (did you mean "subjects"?)
%[1]s: sinks.nohost.wait: must be a positive duration such as "500ms", "30s" or "5m", got "0s"
env SLUICE_SINKS__ENVHOST__ENDPOINT: sinks.envhost.endpoint: must be host:port, got a string`, path, dir)
	if got := err.Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	var fe *sinks.FieldError
	if !errors.As(err, &fe) {
		t.Error("a Validate error is not kept as the cause")
	}
}

// A sink type whose struct the loader cannot use is a bug in its package:
// Load says so, whatever the file holds.
func TestSinkTypeMustBeUsable(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "sluice.yaml", "feeds_dir: \"\"\n")
	for name, c := range map[string]struct {
		newConfig func() any
		want      string
	}{
		"not a pointer": {func() any { return queueWindow{} }, "config is a config_test.queueWindow, want a pointer to a struct"},
		"float": {func() any {
			return &struct {
				F float64 `config:"f"`
			}{}
		}, "field F: a float64 cannot be a config key"},
		"pipeline key": {func() any {
			return &struct {
				B int `config:"batch_size"`
			}{}
		}, `key "batch_size" is one every sink has`},
		"type key": {func() any {
			return &struct {
				T string `config:"type"`
			}{}
		}, `key "type" is one every sink has`},
		"unknown option": {func() any {
			return &struct {
				S string `config:"s,optional"`
			}{}
		}, `field S: unknown config tag option "optional"`},
		"oneof on an int": {func() any {
			return &struct {
				N int `config:"n,oneof=1|2"`
			}{}
		}, "field N: empty, oneof, path and secretfile are for strings"},
		"bad path base": {func() any {
			return &struct {
				P string `config:"p,path=home"`
			}{}
		}, "field P: path=home: want path=config_dir or path=data_dir"},
		"no keys at all": {func() any { return &struct{ A, B string }{} }, ""},
		"secretfile to a non-secret": {func() any {
			return &struct {
				V string `config:"v"`
				F string `config:"f,secretfile=v"`
			}{}
		}, "key f: secretfile=v: want a string key and a secret string key of the same section"},
		"two fields, one key": {func() any {
			return &struct {
				A string `config:"k"`
				B string `config:"k"`
			}{}
		}, `field B: key "k" is taken by another field`},
	} {
		_, err := config.LoadWithEnv(path, nil, config.SinkTypes{"x": c.newConfig})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), `config: sink type "x": `+c.want)):
			t.Errorf("%s: got %v, want %s", name, err, c.want)
		}
	}
	if _, err := config.LoadWithEnv(path, nil, config.SinkTypes{"a b": defaultQueue}); err == nil || !strings.Contains(err.Error(), "invalid name") {
		t.Errorf("a type named %q: %v", "a b", err)
	}
}

// liveish is a sink type with pipeline defaults of its own.
type liveish struct {
	Listen string `config:"listen" doc:"where it listens"`
}

func (*liveish) PipelineDefaults() map[string]any {
	return map[string]any{"when_full": "drop_oldest", "max_buffer_bytes": 4 << 20}
}

// badDefaults is a sink type whose pipeline defaults are a bug.
type badDefaults struct {
	X string `config:"x" doc:"x"`
	d map[string]any
}

func (b *badDefaults) PipelineDefaults() map[string]any { return b.d }

// A type's pipeline defaults come over the top-level pipeline and under
// the sink's own keys, and its max_buffer_bytes takes no share of the
// buffer.
func TestSinkTypePipelineDefaults(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "sluice.yaml", `feeds_dir: ""
buffer: {max_bytes: 100000000}
pipeline: {when_full: block, batch_size: 9}
sinks:
  live: {type: liveish}
  tuned: {type: liveish, when_full: drop_newest}
  db: {type: sqlite}
`)
	types := config.SinkTypes(all.Types.Configs())
	types["liveish"] = func() any { return &liveish{} }
	cfg, err := config.LoadWithEnv(path, nil, types)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Sinks["live"].Pipeline; p.WhenFull != config.DropOldest || p.MaxBufferBytes != 4<<20 || p.BatchSize != 9 {
		t.Errorf("live pipeline = %+v, want drop_oldest, 4 MiB, batch 9", p)
	}
	if p := cfg.Sinks["tuned"].Pipeline; p.WhenFull != config.DropNewest || p.MaxBufferBytes != 4<<20 {
		t.Errorf("tuned pipeline = %+v, want drop_newest, 4 MiB", p)
	}
	if p := cfg.Sinks["db"].Pipeline; p.WhenFull != config.Block || p.MaxBufferBytes != 100000000-8<<20 {
		t.Errorf("db pipeline = %+v, want block and what the two others leave", p)
	}

	for name, d := range map[string]map[string]any{
		"unknown key": {"batch": 3},
		"bad value":   {"when_full": "drop_all"},
		"bad type":    {"max_buffer_bytes": "4MiB"},
	} {
		_, err := config.LoadWithEnv(path, nil, config.SinkTypes{"x": func() any { return &badDefaults{d: d} }})
		if err == nil || !strings.Contains(err.Error(), `config: sink type "x": pipeline default`) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
