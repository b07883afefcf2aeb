// Package testinflux runs a real InfluxDB 1.8 (influxd) for tests: on
// free loopback ports, with its data in a temporary directory, Flux
// enabled, and one database created, stopped when the test ends.
package testinflux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/sluicehq/sluice/internal/testproc"
)

// Environment variables.
const (
	// EnvBinary is the path of the influxd binary; the default is
	// .cache/bin/influxd under the module root (where scripts/influxd.sh
	// installs it).
	EnvBinary = "SLUICE_INFLUXD"
	// EnvRequire, set to 1, turns a missing binary into a test failure
	// instead of a skip, so that CI cannot pass by skipping.
	EnvRequire = "SLUICE_REQUIRE_INFLUXD"
)

// Database is the database Start creates; Bucket is its v2 bucket name.
const (
	Database = "sluice"
	Bucket   = Database + "/autogen"
)

// startTimeout bounds how long influxd may take to answer /ping.
const startTimeout = 60 * time.Second

// Server is one running influxd.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	config  string
	httpURL string
	opts    Options
	log     *os.File

	mu   sync.Mutex
	proc *testproc.Proc // nil when stopped
}

// Options change how the server is configured.
type Options struct {
	// MaxBodySize is [http] max-body-size in bytes (0: influxd's 25 MB).
	MaxBodySize int
	// AuthUser and AuthPassword, when set, enable authentication with an
	// admin user of that name.
	AuthUser, AuthPassword string
}

// Start launches influxd with default options. See StartWith.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith launches influxd, waits until it answers, creates Database,
// and registers its stop with t.Cleanup. It skips the test when the binary
// is missing (or when -short), unless SLUICE_REQUIRE_INFLUXD=1, which makes
// that a failure.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	require := os.Getenv(EnvRequire) == "1"
	if testing.Short() && !require {
		t.Skip("testinflux: -short skips tests against a real InfluxDB")
	}
	bin, err := binary()
	if err != nil {
		msg := fmt.Sprintf("testinflux: %v; install it with scripts/influxd.sh and set %s to the path it prints", err, EnvBinary)
		if require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	dir := t.TempDir()
	s := &Server{t: t, bin: bin, dir: dir, opts: o, config: filepath.Join(dir, "influxd.conf")}
	s.log, err = os.Create(filepath.Join(dir, "influxd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill() // the data is thrown away: no need for a clean shutdown
		s.log.Close()
		if t.Failed() {
			if log := testproc.Tail(s.log.Name(), 4096); log != "" {
				t.Logf("influxd log (tail):\n%s", log)
			}
		}
	})
	// A port found free can be taken before influxd binds it: try again
	// with new ports when that happens.
	for attempt := 1; ; attempt++ {
		httpAddr, rpcAddr := testproc.FreeAddr(t), testproc.FreeAddr(t)
		s.httpURL = "http://" + httpAddr
		if err := os.WriteFile(s.config, []byte(configFile(dir, httpAddr, rpcAddr, o)), 0o644); err != nil {
			t.Fatal(err)
		}
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, testproc.ErrExited) {
			t.Fatalf("testinflux: %v", err)
		}
	}
	if o.AuthUser != "" {
		q := fmt.Sprintf("CREATE USER %q WITH PASSWORD '%s' WITH ALL PRIVILEGES", o.AuthUser, strings.ReplaceAll(o.AuthPassword, "'", `\'`))
		if _, err := s.query("POST", q, false); err != nil {
			t.Fatalf("testinflux: %v", err)
		}
	}
	if _, err := s.query("POST", "CREATE DATABASE "+Database, true); err != nil {
		t.Fatalf("testinflux: %v", err)
	}
	return s
}

func configFile(dir, httpAddr, rpcAddr string, o Options) string {
	return fmt.Sprintf(`reporting-disabled = true
bind-address = %q

[meta]
  dir = %q

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = %q
  auth-enabled = %t
  log-enabled = false
  write-tracing = false
  flux-enabled = true
  max-body-size = %d

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
`, rpcAddr, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"),
		httpAddr, o.AuthUser != "", maxBody(o.MaxBodySize))
}

func maxBody(n int) int {
	if n == 0 {
		return 25000000
	}
	return n
}

// binary finds influxd.
func binary() (string, error) {
	p := os.Getenv(EnvBinary)
	if p == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", fmt.Errorf("%s is not set and %w", EnvBinary, err)
		}
		p = filepath.Join(root, ".cache", "bin", "influxd")
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("no influxd at %s", p)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable", p)
	}
	return p, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// start runs influxd and waits for /ping.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("influxd already running")
	}
	cmd := exec.Command(s.bin, "run", "-config", s.config)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	p, err := testproc.Start(cmd, s.log.Name(), startTimeout, func() bool {
		resp, err := http.Get(s.httpURL + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	})
	s.proc = p
	return err
}

// Stop stops influxd (SIGTERM, then SIGKILL after 30s) and waits for it
// to exit. Data stays; Restart brings it back on the same port. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Stop(30 * time.Second)
		s.proc = nil
	}
}

// kill stops influxd with SIGKILL.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Kill()
		s.proc = nil
	}
}

// Restart stops influxd if it runs and starts it again with the same
// data directory and ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("testinflux: restart: %v", err)
	}
}

// URL is the HTTP base URL, e.g. http://127.0.0.1:43817.
func (s *Server) URL() string { return s.httpURL }

// Token is what a v2 API client sends for the configured user
// ("user:password"), or "" without authentication.
func (s *Server) Token() string {
	if s.opts.AuthUser == "" {
		return ""
	}
	return s.opts.AuthUser + ":" + s.opts.AuthPassword
}

// Dir is the server's data directory (its log is influxd.log there).
func (s *Server) Dir() string { return s.dir }

// Series is one InfluxQL result series.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	// Values holds rows; numbers are json.Number so that int64s survive.
	Values [][]any `json:"values"`
}

// Query runs one InfluxQL statement against Database with epoch=ns
// timestamps and returns its series. A query error fails the test.
func (s *Server) Query(influxql string) []Series {
	s.t.Helper()
	series, err := s.query("GET", influxql, true)
	if err != nil {
		s.t.Fatalf("testinflux: %v", err)
	}
	return series
}

func (s *Server) query(method, q string, auth bool) ([]Series, error) {
	v := url.Values{"q": {q}, "db": {Database}, "epoch": {"ns"}}
	var req *http.Request
	var err error
	if method == "GET" {
		req, err = http.NewRequest(method, s.httpURL+"/query?"+v.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, s.httpURL+"/query", strings.NewReader(v.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, err
	}
	if auth && s.opts.AuthUser != "" {
		req.SetBasicAuth(s.opts.AuthUser, s.opts.AuthPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	var out struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("query %q: %d %s", q, resp.StatusCode, body)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("query %q: %s", q, out.Error)
	}
	var series []Series
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("query %q: %s", q, r.Error)
		}
		series = append(series, r.Series...)
	}
	return series, nil
}

// QueryFlux runs a Flux query through the v2 query API (with the
// influxdb-client-go query client) and returns every record's values,
// typed as Flux declares them (int64, uint64, float64, string, bool,
// time.Time). A query error fails the test.
func (s *Server) QueryFlux(flux string) []map[string]any {
	s.t.Helper()
	c := influxdb2.NewClientWithOptions(s.httpURL, s.Token(), influxdb2.DefaultOptions().SetApplicationName("testinflux"))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.QueryAPI("").Query(ctx, flux)
	if err != nil {
		s.t.Fatalf("testinflux: flux %q: %v", flux, err)
	}
	defer res.Close()
	var out []map[string]any
	for res.Next() {
		out = append(out, res.Record().Values())
	}
	if err := res.Err(); err != nil {
		s.t.Fatalf("testinflux: flux %q: %v", flux, err)
	}
	return out
}
