package agent_test

// End-to-end tests of secrets and plugin trust, with the real binaries: a
// canary secret goes through every config path and every failure the
// test can provoke, and no output may show it; plugins get only the
// environment they need; untrusted plugin directories and oversized
// plugin messages fail only their feeds.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testinflux"
)

// canaries are secrets, one per way a secret enters the agent. Each is
// distinct so that a leak says which path leaked.
var canaries = map[string]string{
	"influx url password":  "CANARY-urlpass-1a",
	"influx url query":     "CANARY-urlquery-2b",
	"influx env token":     "CANARY-envtoken-3c",
	"influx token file":    "CANARY-tokfile-4d",
	"jsonws inline apikey": "CANARY-apikey-5e",
	"jsonws env header":    "CANARY-wsenv-6f",
	"jsonws file login":    "CANARY-wsfile-7a",
	"bad template":         "CANARY-tpl-8b",
	"bad url":              "CANARY-badurl-9c",
	"unreferenced env":     "CANARY-unref-0d",
}

// assertNoCanary fails if text shows any canary, raw or percent-encoded.
func assertNoCanary(t *testing.T, where, text string) {
	t.Helper()
	for what, c := range canaries {
		if strings.Contains(text, c) || strings.Contains(text, url.QueryEscape(c)) {
			i := strings.Index(text, c)
			t.Errorf("%s shows the %s secret: ...%s...", where, what, text[max(0, i-200):min(len(text), i+100)])
		}
	}
}

// runSluice runs the sluice command with extra environment variables.
func runSluice(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testbin.Sluice(t), args...)
	cmd.Env = testbin.Env(env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// echoServer is a WebSocket server that repeats what it was sent in its
// refusals, as verbose servers do: the path /refuse refuses the handshake
// quoting the URL and the Authorization header; any other path accepts,
// then refuses the login message quoting it.
func echoServer(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/refuse", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "bad credentials: %s %s", r.URL, r.Header.Get("Authorization"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, login, err := c.ReadMessage()
		if err != nil {
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"status":"denied","request":`+string(login)+`,"url":"`+r.URL.String()+`","auth":"`+r.Header.Get("Authorization")+`"}`))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

const wsRules = `rules: [{name: t, match: [{path: type, equals: trade}], measurement: trades, fields: {price: {path: p, type: float}}}]`

func TestSecretsNeverShow(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("influx.token", canaries["influx token file"]+"\n")
	loginFile := write("ws.key", canaries["jsonws file login"]+"\n")
	ws := echoServer(t)
	down := testagent.FreeAddr(t) // an InfluxDB that is not there

	path := testagent.WriteConfig(t, dir, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
  influxurl:
    type: influxdb
    url: "http://sluice:%[1]s@%[2]s/?token=%[3]s"
    bucket: b
    retry_initial: 50ms
    retry_max: 200ms
  influxenv: {type: influxdb, url: "http://%[2]s", bucket: b, retry_initial: 50ms, retry_max: 200ms}
  influxfile: {type: influxdb, url: "http://%[2]s", bucket: b, token_file: %[4]s, retry_initial: 50ms, retry_max: 200ms}
feeds:
  synth:
    plugin: synth
    sinks: [db, influxurl, influxenv, influxfile]
    config: {rate: 50}
  env:
    plugin: envdump
    sinks: [db]
    # envdump ignores its config; the reference is what gets it ENVDUMP_VAR.
    config: {note: "${env:ENVDUMP_VAR}"}
  wsrefused:
    plugin: jsonws
    sinks: [db]
    config:
      url: "ws://%[5]s/refuse?apikey=%[6]s&symbol=ABC"
      headers: {Authorization: "Bearer ${env:WS_KEY}"}
      %[10]s
  wslogin:
    plugin: jsonws
    sinks: [db]
    config:
      url: "ws://%[5]s/ws?apikey=%[6]s"
      headers: {Authorization: "Bearer ${env:WS_KEY}"}
      on_open: [{send: {op: auth, key: "${file:%[7]s}"}, expect: {path: status, equals: ok, fail: [{path: status, equals: denied}]}}]
      %[10]s
  wstemplate:
    plugin: jsonws
    sinks: [db]
    config: {url: "ws://%[5]s/?k=%[8]s${env:WS_KEY", %[10]s}
  wsurl:
    plugin: jsonws
    sinks: [db]
    config: {url: "ws://user:%[9]s/x@%[5]s/", %[10]s}
  wszero:
    plugin: jsonws
    sinks: [db]
    config: {url: "ws://%[5]s/", headers: {X-Key: "${file:/dev/zero}"}, %[10]s}
`, canaries["influx url password"], down, canaries["influx url query"], tokenFile,
		ws, canaries["jsonws inline apikey"], loginFile, canaries["bad template"], canaries["bad url"], wsRules))
	// The test plugin envdump sits next to the real ones.
	cfg, _ := os.ReadFile(path)
	pluginDir := testbin.PluginDirWith(t, "envdump")
	os.WriteFile(path, []byte(strings.Replace(string(cfg), "plugin_dir: "+testbin.PluginDir(t), "plugin_dir: "+pluginDir, 1)), 0o644)

	env := []string{
		"SLUICE_SINKS__INFLUXENV__TOKEN=" + canaries["influx env token"],
		"WS_KEY=" + canaries["jsonws env header"],
		"ENVDUMP_VAR=envdump-was-given-this",
		"UNREFERENCED_SECRET=" + canaries["unreferenced env"],
	}
	a := testagent.Launch(t, path, env...)
	failed := func(st agent.Status, feed string, state agent.FeedState) bool {
		return testagent.Feed(st, feed).State == state
	}
	st := a.WaitFor(t, "every failure provoked", func(st agent.Status) bool {
		for _, s := range []string{"influxurl", "influxenv", "influxfile"} {
			if testagent.Sink(st, s).Retries < 2 {
				return false
			}
		}
		return failed(st, "wsrefused", agent.FeedFailed) && failed(st, "wslogin", agent.FeedFailed) &&
			failed(st, "wstemplate", agent.FeedFailedConfig) && failed(st, "wsurl", agent.FeedFailedConfig) &&
			failed(st, "wszero", agent.FeedFailedConfig) && testagent.Feed(st, "env").Points > 5
	})

	// Everything a user can look at.
	_, readyz := get(t, a.Base+"/readyz")
	_, status := get(t, a.Base+"/api/v1/status")
	statusOut, statusErr, _ := runSluice(t, env, "status", "-config", path)
	validateOut, validateErr, code := runSluice(t, env, "validate", "-config", path)
	if code != 1 {
		t.Errorf("validate exited %d, want 1:\n%s%s", code, validateOut, validateErr)
	}
	// The InfluxDB sinks cannot drain: no graceful stop to wait for.
	a.Kill()
	db := testagent.OpenDB(t, a.DB)
	var events, pluginEnv strings.Builder
	rows, err := db.Query(`SELECT message FROM feed_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		rows.Scan(&m)
		fmt.Fprintln(&events, m)
	}
	rows.Close()
	envRows, err := db.Query(`SELECT name, value FROM env ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for envRows.Next() {
		var n, v string
		envRows.Scan(&n, &v)
		got[n] = v
		fmt.Fprintf(&pluginEnv, "%s=%s\n", n, v)
	}
	envRows.Close()

	outputs := map[string]string{
		"the agent's log (plugin logs included)": a.Log(),
		"/readyz":                                readyz,
		"/api/v1/status":                         status,
		"sluice status":                          statusOut + statusErr,
		"sluice validate":                        validateOut + validateErr,
		"feed_events in SQLite":                  events.String(),
		"the envdump plugin's environment":       pluginEnv.String(),
	}
	for where, text := range outputs {
		assertNoCanary(t, where, text)
	}

	// Not vacuous: each failure happened, and says where it masked.
	for _, c := range []struct{ in, want string }{
		{a.Log(), `sluice:REDACTED@` + down + `/?token=REDACTED`},
		{status, `sluice:REDACTED@` + down},
		{readyz, "feed wsrefused is failed: handshake refused: 401 Unauthorized: bad credentials: /refuse?apikey=REDACTED"},
		{testagent.Feed(st, "wsrefused").LastError, "handshake refused: 401 Unauthorized: bad credentials: /refuse?apikey=REDACTED&symbol=ABC Bearer REDACTED"},
		{testagent.Feed(st, "wslogin").LastError, `"key":"REDACTED"`},
		{testagent.Feed(st, "wstemplate").LastError, "url: reference at byte"},
		{testagent.Feed(st, "wsurl").LastError, "url: is not a valid URL"},
		{testagent.Feed(st, "wszero").LastError, "/dev/zero is larger than 64 KiB, the limit for a secret file"},
		{validateErr, "feeds.wstemplate.config.url: reference at byte"},
		{validateErr, "feeds.wszero.config.headers.X-Key: /dev/zero is larger than 64 KiB"},
		{events.String(), "REDACTED"},
	} {
		if !strings.Contains(c.in, c.want) {
			t.Errorf("missing %q in:\n%s", c.want, c.in)
		}
	}

	// The plugin got what it needs and nothing else.
	if got["ENVDUMP_VAR"] != "envdump-was-given-this" || got["PATH"] == "" {
		t.Errorf("envdump lacks ENVDUMP_VAR or PATH:\n%s", pluginEnv.String())
	}
	for name := range got {
		if strings.HasPrefix(name, "SLUICE_") && name != "SLUICE_PLUGIN" && name != "SLUICE_PLUGIN_LOG_LEVEL" {
			t.Errorf("envdump got the agent's variable %s", name)
		}
		if name == "WS_KEY" || name == "UNREFERENCED_SECRET" {
			t.Errorf("envdump got %s, which only another feed, or nothing, references", name)
		}
	}
}

// A real InfluxDB 1.8 refusing the password of a user:password@ URL: the
// sink fails, and neither its error in /readyz and status nor the log
// shows the password.
func TestInfluxRefusalShowsNoSecret(t *testing.T) {
	srv := testinflux.StartWith(t, testinflux.Options{AuthUser: "sluice", AuthPassword: "the-right-one"})
	u, _ := url.Parse(srv.URL())
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  influx: {type: influxdb, url: "http://sluice:%s@%s", bucket: %s, retry_initial: 50ms, retry_max: 200ms}
feeds:
  synth: {plugin: synth, sinks: [influx], config: {rate: 50}}
`, canaries["influx url password"], u.Host, testinflux.Bucket))
	a.WaitFor(t, "the sink failed", func(st agent.Status) bool {
		return testagent.Sink(st, "influx").State == "failed"
	})
	_, readyz := get(t, a.Base+"/readyz")
	_, status := get(t, a.Base+"/api/v1/status")
	statusOut, statusErr, _ := runSluice(t, nil, "status", "-config", a.Config)
	a.Kill()
	for where, text := range map[string]string{
		"/readyz": readyz, "/api/v1/status": status, "sluice status": statusOut + statusErr, "the agent's log": a.Log(),
	} {
		assertNoCanary(t, where, text)
	}
	if want := "sink influx is failed: influxdb write: 401 Unauthorized"; !strings.Contains(readyz, want) {
		t.Errorf("/readyz lacks %q:\n%s", want, readyz)
	}
}

// A config that does not load: `sluice validate` and `sluice run` name
// each problem and quote no secret, whether it came from the file or the
// environment.
func TestConfigErrorsShowNoSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
plugin_dir: %s
feeds_dir: ""
sinks:
  bad: {type: influxdb, url: "ftp://sluice:%s@h/?token=%s", bucket: b}
  zero: {type: influxdb, url: "http://127.0.0.1:1", bucket: b, token_file: /dev/zero}
feeds:
  steal: {plugin: jsonws, sinks: [zero], config: {url: "ws://h/?k=${env:SLUICE_SINKS__ZERO__TOKEN}"}}
`, dir, testbin.PluginDir(t), canaries["influx url password"], canaries["influx url query"])
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SLUICE_HTTP__LISTEN=" + canaries["influx env token"], "SLUICE_SINKS__BAD__TIMEOUT=" + canaries["unreferenced env"]}
	for _, cmd := range []string{"validate", "run"} {
		out, errOut, code := runSluice(t, env, cmd, "-config", path)
		if code != 1 {
			t.Errorf("sluice %s exited %d, want 1", cmd, code)
		}
		assertNoCanary(t, "sluice "+cmd, out+errOut)
		for _, want := range []string{
			path + `: sinks.bad.url: must be an http:// or https:// URL, got "ftp://sluice:REDACTED@h/?token=REDACTED"`,
			path + ": sinks.zero.token_file: cannot read token file: /dev/zero is larger than 64 KiB, the limit for a token file",
			path + ": feeds.steal.config.url: ${env:SLUICE_SINKS__ZERO__TOKEN} names one of the agent's own SLUICE_* variables",
			"env SLUICE_HTTP__LISTEN: http.listen: must be host:port",
			"env SLUICE_SINKS__BAD__TIMEOUT: sinks.bad.timeout: must be a positive duration",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("sluice %s: missing %q in:\n%s", cmd, want, errOut)
			}
		}
	}
}

// A plugin directory others may write is refused: its feeds fail with an
// error naming the directory and the fix, `sluice validate` says the
// same, and once fixed a reload starts the feed.
func TestUntrustedPluginDirFailsFeed(t *testing.T) {
	dir := t.TempDir()
	pluginDir := testbin.PluginDirWith(t)
	if err := os.Chmod(pluginDir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := testagent.WriteConfig(t, dir, `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  synth: {plugin: synth, sinks: [db], config: {rate: 100}}
`)
	cfg, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(cfg), "plugin_dir: "+testbin.PluginDir(t), "plugin_dir: "+pluginDir, 1)), 0o644)

	a := testagent.Launch(t, path)
	st := a.WaitFor(t, "the feed refused", func(st agent.Status) bool {
		return testagent.Feed(st, "synth").State == agent.FeedFailed
	})
	want := "plugin directory " + pluginDir + " is writable by its group and every user (mode 0777); refusing to run plugins from it until fixed: chmod go-w " + pluginDir
	if f := testagent.Feed(st, "synth"); f.LastError != want || f.Points != 0 || f.Restarts != 0 {
		t.Errorf("feed: %q, %d points, %d restarts; want %q, none, none", f.LastError, f.Points, f.Restarts, want)
	}
	_, errOut, code := runSluice(t, nil, "validate", "-config", path)
	if code != 1 || !strings.Contains(errOut, path+": plugin_dir: "+want) {
		t.Errorf("validate exited %d:\n%s", code, errOut)
	}

	os.Chmod(pluginDir, 0o755)
	a.Cmd.Process.Signal(syscall.SIGHUP)
	a.WaitFor(t, "the feed running once fixed", func(st agent.Status) bool {
		return testagent.Feed(st, "synth").Points > 0
	})
	a.Stop(t)
}

// A plugin whose batches exceed limits.max_plugin_message_bytes fails
// its stream with an error naming the key, and restarts with backoff;
// the agent and its other feeds go on.
func TestOversizedPluginMessageRestartsFeed(t *testing.T) {
	// Points of about 8 KiB in batches of 500: about 4 MiB a message.
	a := testagent.Start(t, fmt.Sprintf(`limits: {max_plugin_message_bytes: 1048576}
sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  big: {plugin: synth, sinks: [db], batch_size: 500, config: {measurement: big, symbols: [%s]}}
  small: {plugin: synth, sinks: [db], batch_size: 100, config: {measurement: small, rate: 200}}
`, strings.Repeat("S", 8<<10)))
	st := a.WaitFor(t, "the big feed restarted twice", func(st agent.Status) bool {
		return testagent.Feed(st, "big").Restarts >= 2 && testagent.Feed(st, "small").Points >= 200
	})
	big := testagent.Feed(st, "big")
	for _, want := range []string{"the plugin sent a message larger than the agent takes", "grpc: received message larger than max", "limits.max_plugin_message_bytes is 1048576: raise it, or lower the feed's batch_size"} {
		if !strings.Contains(big.LastError, want) {
			t.Errorf("big feed's error %q lacks %q", big.LastError, want)
		}
	}
	if code, _ := get(t, a.Base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	a.Stop(t)
	db := testagent.OpenDB(t, a.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM small`); n < 200 {
		t.Errorf("the small feed wrote %d points, want at least 200", n)
	}
}
