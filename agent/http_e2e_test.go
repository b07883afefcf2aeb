package agent_test

// End-to-end tests of who may use the agent's HTTP API, with the real
// binaries: what TCP serves with and without a token, the unix socket,
// the Host, Origin and Content-Type checks, and the bounds on tap.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
)

// setHTTP adds keys to the http line testagent.WriteConfig wrote.
func setHTTP(t *testing.T, path, keys string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "http: {") {
			line = strings.TrimSuffix(line, "}") + ", " + keys + "}"
		}
		out = append(out, line)
	}
	testagent.WriteFile(t, path, strings.Join(out, "\n"))
}

// writeToken writes a token file into dir and returns its path.
func writeToken(t *testing.T, dir, token string) string {
	t.Helper()
	p := filepath.Join(dir, "http.token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// apiClient speaks HTTP to the agent over TCP, or over its unix socket.
type apiClient struct {
	name string // for messages
	base string
	cl   *http.Client
}

func tcpClient(a *testagent.Agent) apiClient {
	return apiClient{name: "tcp", base: a.Base, cl: &http.Client{Transport: &http.Transport{Proxy: nil}}}
}

func unixClient(a *testagent.Agent) apiClient {
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", a.Socket)
	}}
	return apiClient{name: "socket", base: "http://localhost", cl: &http.Client{Transport: tr}}
}

// req is one request; Host overrides the Host header.
type req struct {
	method, path, host, body string
	header                   map[string]string
}

// do sends r and returns the status code and up to 4 KiB of the body; a
// stream (tap) is cut there.
func (c apiClient) do(t *testing.T, r req) (int, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := c.cl.Do(hr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", c.name, r.method, r.path, err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadAtLeast(resp.Body, b, 1)
	return resp.StatusCode, string(b[:n])
}

func (c apiClient) expect(t *testing.T, r req, code int, bodyHas string) {
	t.Helper()
	got, body := c.do(t, r)
	if got != code || !strings.Contains(body, bodyHas) {
		t.Errorf("%s %s %s (host %q, headers %v): %d %q; want %d with %q", c.name, r.method, r.path, r.host, r.header, got, body, code, bodyHas)
	}
}

var crossSite = map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}

// A web page of another origin can make a browser send a "simple" POST
// (text/plain or a form, no preflight) to the agent: it must not reload.
// Over TCP reload is not served at all without a token; on the socket
// (and over TCP with a token) the Origin and Content-Type checks refuse
// what a browser sends cross-site, while the CLI's plain POST goes through.
func TestCrossSiteReloadRefused(t *testing.T) {
	dir := t.TempDir()
	body := "sinks:\n  db: {type: sqlite, path: sluice.db}\nfeeds:\n  keeper: {plugin: synth, sinks: [db], config: {measurement: keeper, rate: 50}}\n"
	path := testagent.WriteConfig(t, dir, body)
	token := "0123456789abcdef0123456789abcdef"
	setHTTP(t, path, `token_file: "`+writeToken(t, dir, token)+`"`)
	a := testagent.Launch(t, path)
	a.WaitFor(t, "keeper running", func(st agent.Status) bool { return testagent.Feed(st, "keeper").State == agent.FeedRunning })
	// What a reload would add.
	writeConfigKeepAddr(t, path, body+"  intruder: {plugin: synth, sinks: [db], config: {measurement: intruder, rate: 50}}\n")

	tcp, sock := tcpClient(a), unixClient(a)
	bearer := "Bearer " + token
	with := func(h map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range h {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	reload := func(h map[string]string, body string) req {
		return req{method: http.MethodPost, path: "/api/v1/reload", header: h, body: body}
	}
	for _, c := range []struct {
		client apiClient
		r      req
		code   int
		why    string
	}{
		// What a page on another origin sends: a text/plain body.
		{tcp, reload(crossSite, "x"), http.StatusUnauthorized, "token"},
		{sock, reload(crossSite, "x"), http.StatusForbidden, "another origin"},
		{tcp, reload(with(crossSite, "Authorization", bearer), "x"), http.StatusForbidden, "another origin"},
		// An older browser: Origin, no Sec-Fetch-Site.
		{sock, reload(map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, "x"), http.StatusForbidden, "another origin"},
		{sock, reload(map[string]string{"Origin": "http://localhost:3000"}, ""), http.StatusForbidden, "another origin"},
		{sock, reload(map[string]string{"Origin": "null"}, ""), http.StatusForbidden, "another origin"},
		// Same-site is not same-origin (another port, another subdomain).
		{sock, reload(map[string]string{"Sec-Fetch-Site": "same-site"}, ""), http.StatusForbidden, "another origin"},
		// No Origin at all, but a body a form could send.
		{sock, reload(map[string]string{"Content-Type": "text/plain"}, "x"), http.StatusUnsupportedMediaType, "application/json"},
		{sock, reload(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "a=b"), http.StatusUnsupportedMediaType, "application/json"},
		{sock, reload(map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "--x--"), http.StatusUnsupportedMediaType, "application/json"},
		{sock, reload(nil, "x"), http.StatusUnsupportedMediaType, "Content-Type: application/json"},
		{tcp, reload(map[string]string{"Authorization": bearer, "Content-Type": "text/plain"}, "x"), http.StatusUnsupportedMediaType, "application/json"},
	} {
		c.client.expect(t, c.r, c.code, c.why)
	}
	st, _ := a.Status(t)
	if testagent.HasFeed(st, "intruder") || !st.LastReload.IsZero() {
		t.Fatalf("a refused request reloaded the agent: feeds %+v, last reload %v", st.Feeds, st.LastReload)
	}

	// The CLI's request (no body, no Origin) and a same-origin page's
	// are served.
	sock.expect(t, reload(map[string]string{"Origin": "http://localhost", "Content-Type": "application/json"}, "{}"), http.StatusOK, `"ok": true`)
	if st, _ := a.Status(t); !testagent.HasFeed(st, "intruder") {
		t.Fatal("the reload over the socket did not apply the config")
	}
	writeConfigKeepAddr(t, path, body)
	tcp.expect(t, reload(map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "none"}, ""), http.StatusOK, `"removed": [`)
}

// Every endpoint, on both transports, refuses a Host header that does not
// name the agent: a DNS-rebinding page's requests carry its own name.
func TestForeignHostRefused(t *testing.T) {
	dir := t.TempDir()
	path := testagent.WriteConfig(t, dir, "sinks:\n  db: {type: sqlite, path: sluice.db}\nfeeds:\n  f: {plugin: synth, sinks: [db], config: {rate: 50}}\n")
	setHTTP(t, path, `allowed_hosts: [sluice.test]`)
	a := testagent.Launch(t, path)
	a.WaitFor(t, "f running", func(st agent.Status) bool { return testagent.Feed(st, "f").State == agent.FeedRunning })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(a.Base, "http://"))

	endpoints := []req{
		{path: "/healthz"}, {path: "/readyz"}, {path: "/metrics"}, {path: "/api/v1/status"},
		{path: "/api/v1/tap?feed=f"}, {method: http.MethodPost, path: "/api/v1/reload"}, {path: "/nosuch"},
	}
	for _, c := range []apiClient{tcpClient(a), unixClient(a)} {
		for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil.example", "sluice.test.evil.example"} {
			for _, r := range endpoints {
				r.host = host
				c.expect(t, r, http.StatusMisdirectedRequest, "http.allowed_hosts")
			}
		}
		for _, host := range []string{"localhost", "localhost:" + port, "LocalHost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "[::1]", "sluice.test:" + port, "SLUICE.TEST"} {
			c.expect(t, req{path: "/api/v1/status", host: host}, http.StatusOK, `"feeds"`)
		}
	}
	st, _ := a.Status(t)
	if !st.LastReload.IsZero() {
		t.Error("a request with a foreign Host reloaded the agent")
	}
}

// Over TCP without a token only the read-only endpoints are served; with
// one, everything but the health probes needs it, reload and tap
// included. The CLI finds the token through the config.
func TestTokenOverTCP(t *testing.T) {
	feeds := "sinks:\n  db: {type: sqlite, path: sluice.db}\nfeeds:\n  f: {plugin: synth, sinks: [db], config: {rate: 200}}\n"

	t.Run("without", func(t *testing.T) {
		a := testagent.Start(t, feeds)
		a.WaitFor(t, "f running", func(st agent.Status) bool { return testagent.Feed(st, "f").State == agent.FeedRunning })
		tcp := tcpClient(a)
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/status"} {
			if code, _ := tcp.do(t, req{path: p}); code != http.StatusOK {
				t.Errorf("GET %s over TCP: %d", p, code)
			}
		}
		tcp.expect(t, req{method: http.MethodPost, path: "/api/v1/reload"}, http.StatusForbidden, "set http.token_file")
		tcp.expect(t, req{path: "/api/v1/tap?feed=f"}, http.StatusForbidden, "use the agent's unix socket (http.socket: "+a.Socket+")")
		tcp.expect(t, req{method: http.MethodPost, path: "/api/v1/reload", header: map[string]string{"Authorization": "Bearer 0123456789abcdef0123456789abcdef"}}, http.StatusForbidden, "http.token_file")
		// The CLI told to use TCP says why reload is refused.
		_, errOut, code := sluiceCmd(t, "reload", "-config", a.Config, "-addr", strings.TrimPrefix(a.Base, "http://"))
		if code != 1 || !strings.Contains(errOut, "403 Forbidden: POST /api/v1/reload is not served over TCP") {
			t.Errorf("sluice reload -addr without a token: exit %d, %s", code, errOut)
		}
	})

	t.Run("with", func(t *testing.T) {
		dir := t.TempDir()
		path := testagent.WriteConfig(t, dir, feeds)
		token := "f00dfeedf00dfeedf00dfeedf00dfeed"
		setHTTP(t, path, `token_file: http.token`) // relative to the config's directory
		writeToken(t, dir, token)
		a := testagent.Launch(t, path)
		a.WaitFor(t, "f running", func(st agent.Status) bool { return testagent.Feed(st, "f").State == agent.FeedRunning })
		tcp := tcpClient(a)
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, _ := tcp.do(t, req{path: p}); code != http.StatusOK {
				t.Errorf("GET %s without a token: %d", p, code)
			}
		}
		for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, "Bearer " + token[:16]} {
			for _, r := range []req{{path: "/metrics"}, {path: "/api/v1/status"}, {path: "/api/v1/tap?feed=f"}, {method: http.MethodPost, path: "/api/v1/reload"}} {
				r.header = map[string]string{"Authorization": auth}
				if auth == "" {
					r.header = nil
				}
				tcp.expect(t, r, http.StatusUnauthorized, "missing or wrong token")
			}
		}
		good := map[string]string{"Authorization": "Bearer " + token}
		tcp.expect(t, req{path: "/metrics", header: good}, http.StatusOK, "# HELP go_")
		tcp.expect(t, req{path: "/api/v1/tap?feed=f", header: good}, http.StatusOK, "# tapping feed f")
		tcp.expect(t, req{method: http.MethodPost, path: "/api/v1/reload", header: good}, http.StatusOK, `"ok": true`)

		// The CLI over TCP reads the token from http.token_file.
		addr := strings.TrimPrefix(a.Base, "http://")
		if out, errOut, code := sluiceCmd(t, "reload", "-config", path, "-addr", addr); code != 0 || out != "reloaded; no feed changed\n" {
			t.Errorf("sluice reload -addr with a token: exit %d, %q %q", code, out, errOut)
		}
		if out, errOut, code := sluiceCmd(t, "status", "-config", path, "-addr", addr); code != 0 || !strings.Contains(out, "FEED") {
			t.Errorf("sluice status -addr with a token: exit %d, %q %q", code, out, errOut)
		}
		// A wrong token: the agent's refusal, through the CLI.
		writeToken(t, dir, strings.Repeat("9", 32))
		if _, errOut, code := sluiceCmd(t, "status", "-config", path, "-addr", addr); code != 1 || !strings.Contains(errOut, "401 Unauthorized: missing or wrong token") {
			t.Errorf("sluice status -addr with a wrong token: exit %d, %q", code, errOut)
		}
		a.Stop(t)

		// A token file that cannot be used: validate says so, and the
		// agent does not start.
		want := path + ": http.token_file: token in " + filepath.Join(dir, "http.token") + " is shorter than 16 characters"
		writeToken(t, dir, "short")
		if _, errOut, code := sluiceCmd(t, "validate", "-config", path); code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("validate with a short token: exit %d, %q; want %q", code, errOut, want)
		}
		expectStartFails(t, path, want)
	})
}

// The unix socket: mode 0660, every endpoint for the CLI with nothing but
// -config, replaced when stale, removed on stop; never a file that is not
// a socket, nor one another process answers on.
func TestSocket(t *testing.T) {
	feeds := "sinks:\n  db: {type: sqlite, path: sluice.db}\nfeeds:\n  f: {plugin: synth, sinks: [db], config: {rate: 200}}\n"
	dir := t.TempDir()
	path := testagent.WriteConfig(t, dir, feeds)
	a := testagent.Launch(t, path)
	a.WaitFor(t, "f flowing", func(st agent.Status) bool { return testagent.Feed(st, "f").Points > 0 })

	fi, err := os.Lstat(a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("%s: mode %v, want a socket with 0660", a.Socket, fi.Mode())
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; int(gid) != os.Getegid() {
		t.Errorf("socket group %d, want the agent's %d", gid, os.Getegid())
	}
	// TCP refuses reload and tap; the CLI goes through the socket.
	if code, _ := tcpClient(a).do(t, req{method: http.MethodPost, path: "/api/v1/reload"}); code != http.StatusForbidden {
		t.Fatalf("reload over TCP without a token: %d", code)
	}
	if out, errOut, code := sluiceCmd(t, "reload", "-config", path); code != 0 || out != "reloaded; no feed changed\n" {
		t.Errorf("sluice reload: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := sluiceCmd(t, "status", "-config", path); code != 0 || !strings.Contains(out, "\nf ") {
		t.Errorf("sluice status: exit %d, %q %q", code, out, errOut)
	}
	tapLines(t, path, "f", 3)
	a.Stop(t)
	if _, err := os.Lstat(a.Socket); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}

	// A socket left by an agent that was killed is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: a.Socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	a = testagent.Launch(t, path)
	a.WaitFor(t, "f running again", func(st agent.Status) bool { return testagent.Feed(st, "f").State == agent.FeedRunning })
	unixClient(a).expect(t, req{path: "/api/v1/status"}, http.StatusOK, `"feeds"`)
	a.Kill() // leaves the socket behind, as a crash does
	if fi, err := os.Lstat(a.Socket); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("after kill -9: %v, %v", fi, err)
	}

	// A live socket, and anything not a socket, stop the start.
	live, err := net.Listen("unix", a.Socket+".live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := os.Rename(a.Socket+".live", a.Socket); err != nil {
		t.Fatal(err)
	}
	expectStartFails(t, path, "http.socket: "+a.Socket+" is in use")
	os.Remove(a.Socket)
	if err := os.WriteFile(a.Socket, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectStartFails(t, path, "http.socket: "+a.Socket+" exists and is not a socket")
	if b, _ := os.ReadFile(a.Socket); string(b) != "precious" {
		t.Errorf("the file at http.socket was changed: %q", b)
	}

	// No directory: the agent runs without a socket and says so; the CLI
	// explains why reload fails.
	raw, _ := os.ReadFile(path)
	testagent.WriteFile(t, path, strings.Replace(string(raw), a.Socket, filepath.Join(dir, "nosuchdir", "s.sock"), 1))
	a = testagent.Launch(t, path)
	a.WaitFor(t, "f running without a socket", func(st agent.Status) bool { return testagent.Feed(st, "f").State == agent.FeedRunning })
	if !strings.Contains(a.Log(), "serving no unix socket: its directory does not exist") {
		t.Error("no warning about the missing socket directory")
	}
	_, errOut, code := sluiceCmd(t, "reload", "-config", path)
	if code != 1 || !strings.Contains(errOut, "is not served over TCP") || !strings.Contains(errOut, "cannot connect to the agent's socket") {
		t.Errorf("sluice reload without a socket: exit %d, %s", code, errOut)
	}
	if out, _, code := sluiceCmd(t, "status", "-config", path); code != 0 || !strings.Contains(out, "\nf ") {
		t.Errorf("sluice status falls back to TCP: exit %d, %q", code, out)
	}
}

func expectStartFails(t *testing.T, path, msg string) {
	t.Helper()
	a := testagent.Launch(t, path)
	select {
	case <-a.Exited():
	case <-time.After(testagent.WaitTimeout):
		t.Fatalf("the agent started; want it to fail with %q", msg)
	}
	if a.ExitErr() == nil || !strings.Contains(a.Log(), msg) {
		t.Errorf("exit %v; want a failure saying %q; log:\n%s", a.ExitErr(), msg, a.Log())
	}
}

// tapLines runs `sluice tap FEED -config path` until it has printed n
// point lines, and returns them with what it printed to stderr.
func tapLines(t *testing.T, path, feed string, n int) ([]string, string) {
	t.Helper()
	cmd := exec.Command(testbin.Sluice(t), "tap", feed, "-config", path)
	cmd.Env = testbin.Env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	notes := &testagent.SyncWriter{}
	cmd.Stderr = notes
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines, done := make(chan string), make(chan struct{})
	defer cmd.Wait()
	defer cmd.Process.Kill()
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	var got []string
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sluice tap ended after %d lines: %s", len(got), notes.String())
			}
			got = append(got, l)
		case <-time.After(30 * time.Second):
			t.Fatalf("sluice tap: %d lines after 30s, want %d; stderr: %s", len(got), n, notes.String())
		}
	}
	return got, notes.String()
}

// liveHeap estimates the agent's live heap: the least heap_alloc of a few
// samples, since garbage not yet collected comes and goes.
func liveHeap(t *testing.T, a *testagent.Agent) float64 {
	t.Helper()
	sock := unixClient(a)
	least := 0.0
	for i := range 10 {
		resp, err := sock.cl.Get(sock.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if v := metricValue(t, string(body), "go_memstats_heap_alloc_bytes"); i == 0 || v < least {
			least = v
		}
		time.Sleep(100 * time.Millisecond)
	}
	return least
}

// openTap starts a tap stream on the agent's socket that is never read
// past its response header, and returns the status code.
func openTap(t *testing.T, a *testagent.Agent, feed string) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("unix", a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /api/v1/tap?feed=%s HTTP/1.1\r\nHost: localhost\r\n\r\n", feed)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Time{})
	return c, resp.StatusCode
}

// At most http.max_tap_clients streams are served; more are refused at
// once, and clients that stop reading hold a bounded amount of memory
// (each batch formatted once, at most 1 MiB queued per client) instead
// of every batch the feed sends.
func TestTapClientsAreBounded(t *testing.T) {
	const maxClients, extra = 3, 20
	// 20000 points/s (each of 1000 a second sent 20 times, which the
	// uniqueness key folds into one row), in batches of about 105 KB.
	const rate = 20000
	path := testagent.WriteConfig(t, t.TempDir(), `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  fast: {plugin: synth, sinks: [db], batch_size: 1000, flush_interval: 50ms, config: {measurement: fast, rate: 1000, repeat: 20}}
`)
	setHTTP(t, path, fmt.Sprintf("max_tap_clients: %d", maxClients))
	a := testagent.Launch(t, path)
	st := a.WaitFor(t, "fast flowing", func(st agent.Status) bool { return testagent.Feed(st, "fast").Points > 2*rate })
	base := liveHeap(t, a)

	for i := range maxClients {
		if _, code := openTap(t, a, "fast"); code != http.StatusOK {
			t.Fatalf("tap client %d: %d", i+1, code)
		}
	}
	// Long enough for each client to be sent 16 MB it does not read.
	from := testagent.Feed(st, "fast").Points
	a.WaitFor(t, "8s of points", func(st agent.Status) bool { return testagent.Feed(st, "fast").Points > from+8*rate })
	held := liveHeap(t, a)
	const bound = 24 << 20
	if held-base > bound {
		t.Errorf("%d tap clients that do not read grew the live heap by %.1f MiB (%.1f → %.1f); want at most %d MiB",
			maxClients, (held-base)/(1<<20), base/(1<<20), held/(1<<20), bound>>20)
	}

	refused := 0
	for range extra {
		c, code := openTap(t, a, "fast")
		if code == http.StatusServiceUnavailable {
			refused++
		}
		c.Close()
	}
	if refused != extra {
		t.Errorf("%d of %d tap clients past max_tap_clients=%d were refused", refused, extra, maxClients)
	}
	if after := liveHeap(t, a); after-base > bound {
		t.Errorf("after %d more tap clients the live heap grew by %.1f MiB; want at most %d MiB", extra, (after-base)/(1<<20), bound>>20)
	}
	t.Logf("live heap: %.1f MiB before the tap clients, %.1f MiB with %d clients that do not read", base/(1<<20), held/(1<<20), maxClients)
	// The CLI says why.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Sluice(t), "tap", "fast", "-config", path)
	cmd.Env = testbin.Env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "503 Service Unavailable: the agent already serves 3 tap streams") {
		t.Errorf("sluice tap past the limit: %v, %.300s", err, out)
	}
}

// hasRawControl reports whether s holds a byte or rune that drives a
// terminal: ESC, BEL or a C1 control such as CSI (U+009B).
func hasRawControl(s string) bool {
	return strings.ContainsAny(s, "\x1b\x07\u009b\u0090\u009d")
}

// Strings from the agent that reach the terminal (tapped points, config
// errors naming a file) have their control characters escaped.
func TestCLIOutputIsEscaped(t *testing.T) {
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	if err := os.Mkdir(feedsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := testagent.WriteConfigFeedsDir(t, dir, feedsDir, `sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  f: {plugin: synth, sinks: [db], config: {measurement: m, symbols: ["A\e[2JB", "C\u009bD"], rate: 200}}
`)
	a := testagent.Launch(t, path)
	a.WaitFor(t, "f flowing", func(st agent.Status) bool { return testagent.Feed(st, "f").Points > 0 })

	lines, _ := tapLines(t, path, "f", 4)
	all := strings.Join(lines, "\n")
	if hasRawControl(all) || !strings.Contains(all, `symbol=A\x1b[2JB `) || !strings.Contains(all, `symbol=C\u009bD `) {
		t.Errorf("sluice tap printed control characters raw, or not as escapes:\n%q", all)
	}

	// A feed file whose name sets the terminal's title, and is invalid.
	bad := filepath.Join(feedsDir, "\x1b]0;owned\a\u009bbad.yaml")
	testagent.WriteFile(t, bad, "feeds:\n  bad: {plugin: synth, sinks: [nosuch]}\n")
	a.WaitFor(t, "the bad file rejected", func(st agent.Status) bool { return strings.Contains(st.ConfigError, bad) })
	out, _, code := sluiceCmd(t, "status", "-config", path)
	if code != 0 || hasRawControl(out) || !strings.Contains(out, `/feeds.d/\x1b]0;owned\a\u009bbad.yaml: feeds.bad.sinks`) {
		t.Errorf("sluice status: exit %d, control characters raw or not escaped:\n%q", code, out)
	}
	out, _, code = sluiceCmd(t, "status", "-json", "-config", path)
	var st agent.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || hasRawControl(out) || !strings.Contains(st.ConfigError, bad) {
		t.Errorf("sluice status -json: exit %d, %v; control characters raw, or the JSON changed:\n%q", code, err, out)
	}
	_, errOut, code := sluiceCmd(t, "reload", "-config", path)
	if code != 1 || hasRawControl(errOut) || !strings.Contains(errOut, `\x1b]0;owned`) {
		t.Errorf("sluice reload: exit %d, control characters raw or not escaped:\n%q", code, errOut)
	}
}
