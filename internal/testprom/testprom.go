// Package testprom runs a real Prometheus server for tests: on a free
// loopback port, with its storage in a temporary directory, scraping the
// given targets, stopped when the test ends. It also speaks the parts of
// Prometheus's HTTP API that Grafana's Prometheus datasource uses.
package testprom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testproc"
)

// Environment variables.
const (
	// EnvBinary is the path of the prometheus binary; the default is
	// "prometheus" on PATH (Debian's package installs /usr/bin/prometheus;
	// scripts/prometheus.sh installs it).
	EnvBinary = "SLUICE_PROMETHEUS"
	// EnvRequire, set to 1, turns a missing binary into a test failure
	// instead of a skip, so that CI cannot pass by skipping.
	EnvRequire = "SLUICE_REQUIRE_PROMETHEUS"
)

// Job is the job label Prometheus gives every scraped series.
const Job = "sluice"

// Bounds on the server's start and stop. Neither is a timing assertion:
// each only keeps a broken run from hanging.
const (
	startTimeout = time.Minute
	stopTimeout  = 30 * time.Second
)

// Options configure the server.
type Options struct {
	// Targets are host:port addresses whose /metrics Prometheus scrapes.
	Targets []string
	// ScrapeInterval is the scrape (and rule evaluation) interval;
	// default 1s.
	ScrapeInterval time.Duration
}

// Server is one running prometheus.
type Server struct {
	url  string
	proc *testproc.Proc // nil when stopped
	log  *os.File
	c    *http.Client
}

// Start launches prometheus with a config scraping o.Targets, waits until
// it is ready, and registers its stop with t.Cleanup. It skips the test
// when the binary is missing (or with -short), unless
// SLUICE_REQUIRE_PROMETHEUS=1, which makes that a failure.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Require(t)
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, configFile(o), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{c: &http.Client{Timeout: time.Minute}}
	var err error
	if s.log, err = os.Create(filepath.Join(dir, "prometheus.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		s.c.CloseIdleConnections()
		s.log.Close()
		if t.Failed() {
			if log := testproc.Tail(s.log.Name(), 4096); log != "" {
				t.Logf("prometheus log (tail):\n%s", log)
			}
		}
	})
	// A port found free can be taken before prometheus binds it: try
	// again with a new port when that happens.
	for attempt := 1; ; attempt++ {
		addr := testproc.FreeAddr(t)
		s.url = "http://" + addr
		err := s.start(bin, config, filepath.Join(dir, "data"), addr)
		if err == nil {
			return s
		}
		if attempt == 3 || !errors.Is(err, testproc.ErrExited) {
			t.Fatalf("testprom: %v", err)
		}
	}
}

// Require returns the prometheus binary's path. Without one (or with
// -short) it skips the test, saying how to install it, unless
// SLUICE_REQUIRE_PROMETHEUS=1, which makes that a failure. Call it before
// starting what the test needs Prometheus for.
func Require(t testing.TB) string {
	t.Helper()
	require := os.Getenv(EnvRequire) == "1"
	if testing.Short() && !require {
		t.Skip("testprom: -short skips tests against a real Prometheus")
	}
	bin, err := Binary()
	if err != nil {
		msg := fmt.Sprintf("testprom: %v; install it with scripts/prometheus.sh (Debian's package; needs root) or set %s to a prometheus binary", err, EnvBinary)
		if require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Binary finds the prometheus binary: $SLUICE_PROMETHEUS, else
// "prometheus" on PATH.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("no prometheus at %s (%s)", p, EnvBinary)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable (%s)", p, EnvBinary)
		}
		return p, nil
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("no prometheus on PATH")
	}
	return p, nil
}

// configFile is prometheus.yml: one job scraping every target.
func configFile(o Options) []byte {
	targets, _ := json.Marshal(o.Targets) // a JSON array is a YAML flow sequence
	return fmt.Appendf(nil, `global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: %[2]s
    static_configs:
      - targets: %[3]s
`, model(o.ScrapeInterval), Job, targets)
}

// model formats d as a Prometheus duration ("1s", "250ms").
func model(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// start runs prometheus and waits for /-/ready.
func (s *Server) start(bin, config, data, addr string) error {
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	p, err := testproc.Start(cmd, s.log.Name(), startTimeout, func() bool {
		resp, err := s.c.Get(s.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s.proc = p
	return err
}

// stop stops prometheus, if it runs.
func (s *Server) stop() {
	if s.proc != nil {
		s.proc.Stop(stopTimeout)
		s.proc = nil
	}
}

// URL is the HTTP base URL, e.g. http://127.0.0.1:43817.
func (s *Server) URL() string { return s.url }

// Sample is one value of a series at a time.
type Sample struct {
	Time  time.Time
	Value float64 // NaN and ±Inf as Prometheus sends them
}

// Series is one labelled series of a query result: one sample for an
// instant vector, several for a range (matrix).
type Series struct {
	Labels  map[string]string
	Samples []Sample
}

// Query evaluates expr at one instant (GET /api/v1/query).
func (s *Server) Query(ctx context.Context, expr string, at time.Time) ([]Series, error) {
	return s.series(ctx, "/api/v1/query", url.Values{"query": {expr}, "time": {unix(at)}})
}

// QueryRange evaluates expr from start to end every step (GET
// /api/v1/query_range).
func (s *Server) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	return s.series(ctx, "/api/v1/query_range", url.Values{
		"query": {expr}, "start": {unix(start)}, "end": {unix(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
}

// LabelValues lists the values of label on the series matching match
// between start and end (GET /api/v1/label/<label>/values).
func (s *Server) LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error) {
	v := url.Values{"start": {unix(start)}, "end": {unix(end)}}
	if match != "" {
		v.Set("match[]", match)
	}
	var out []string
	err := s.get(ctx, "/api/v1/label/"+url.PathEscape(label)+"/values", v, &out)
	return out, err
}

func unix(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// series runs a query and decodes its vector or matrix.
func (s *Server) series(ctx context.Context, path string, v url.Values) ([]Series, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.get(ctx, path, v, &data); err != nil {
		return nil, err
	}
	return parseResult(data.ResultType, data.Result)
}

// get calls the API and decodes the data of a success envelope.
func (s *Server) get(ctx context.Context, path string, v url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path+"?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("prometheus %s: status %d: %s", path, resp.StatusCode, tail(body, 512))
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus %s: %s: %s", path, env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// parseResult decodes a "vector" or "matrix" result: each sample is a
// [unix seconds, "value"] pair.
func parseResult(typ string, raw json.RawMessage) ([]Series, error) {
	var rows []struct {
		Metric map[string]string    `json:"metric"`
		Value  *[2]json.RawMessage  `json:"value"`  // vector
		Values [][2]json.RawMessage `json:"values"` // matrix
	}
	switch typ {
	case "vector", "matrix":
	default:
		return nil, fmt.Errorf("result type %q, want vector or matrix", typ)
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("%s result: %w", typ, err)
	}
	out := make([]Series, 0, len(rows))
	for _, r := range rows {
		pairs := r.Values
		if r.Value != nil {
			pairs = append(pairs, *r.Value)
		}
		sr := Series{Labels: r.Metric}
		for _, p := range pairs {
			smp, err := parseSample(p)
			if err != nil {
				return nil, fmt.Errorf("%s result: %w", typ, err)
			}
			sr.Samples = append(sr.Samples, smp)
		}
		out = append(out, sr)
	}
	return out, nil
}

func parseSample(p [2]json.RawMessage) (Sample, error) {
	var ts float64
	var val string
	if err := json.Unmarshal(p[0], &ts); err != nil {
		return Sample{}, fmt.Errorf("sample time %s: %w", p[0], err)
	}
	if err := json.Unmarshal(p[1], &val); err != nil {
		return Sample{}, fmt.Errorf("sample value %s: %w", p[1], err)
	}
	v, err := strconv.ParseFloat(val, 64) // also takes NaN, +Inf, -Inf
	if err != nil {
		return Sample{}, fmt.Errorf("sample value %q: %w", val, err)
	}
	return Sample{Time: time.UnixMilli(int64(math.Round(ts * 1000))), Value: v}, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
