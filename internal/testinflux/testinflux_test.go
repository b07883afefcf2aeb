package testinflux

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, s *Server, lines string) {
	t.Helper()
	resp, err := http.Post(s.URL()+"/api/v2/write?bucket="+Bucket+"&precision=ns", "text/plain", strings.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
}

func TestStartQueryRestart(t *testing.T) {
	s := Start(t)
	write(t, s, "cpu,host=a v=1.5 1000000000\ncpu,host=b v=2.25 1000000001\nmem n=2i 1000000001\n")

	got := s.Query(`SELECT count(v) FROM cpu`)
	if len(got) != 1 || fmt.Sprint(got[0].Values[0][1]) != "2" {
		t.Fatalf("count before restart = %+v, want 2", got)
	}

	s.Stop()
	if _, err := http.Get(s.URL() + "/ping"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	s.Stop() // idempotent
	s.Restart()

	got = s.Query(`SELECT v FROM cpu WHERE host = 'b'`)
	if len(got) != 1 || len(got[0].Values) != 1 {
		t.Fatalf("after restart: %+v", got)
	}
	row := got[0].Values[0]
	if row[0] != json.Number("1000000001") || row[1] != json.Number("2.25") {
		t.Fatalf("row after restart = %v, want [1000000001 2.25]", row)
	}

	recs := s.QueryFlux(`from(bucket: "` + Bucket + `") |> range(start: 0)`)
	// One table per series, in series key order: cpu,host=a; cpu,host=b; mem.
	if len(recs) != 3 {
		t.Fatalf("flux records = %d, want 3: %v", len(recs), recs)
	}
	if v, ok := recs[0]["_value"].(float64); !ok || v != 1.5 {
		t.Errorf("first flux value = %#v, want float64 1.5", recs[0]["_value"])
	}
	if v, ok := recs[2]["_value"].(int64); !ok || v != 2 || recs[2]["_measurement"] != "mem" {
		t.Errorf("third flux record = %#v, want mem int64 2", recs[2])
	}
	if ts, _ := recs[2]["_time"].(time.Time); ts.UnixNano() != 1000000001 {
		t.Errorf("third flux time = %v", recs[2]["_time"])
	}
}

func TestAuth(t *testing.T) {
	s := StartWith(t, Options{AuthUser: "admin", AuthPassword: "s3cret"})
	resp, err := http.Post(s.URL()+"/api/v2/write?bucket="+Bucket, "text/plain", strings.NewReader("m v=1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("write without credentials: %s, want 401", resp.Status)
	}
	req, _ := http.NewRequest("POST", s.URL()+"/api/v2/write?bucket="+Bucket, strings.NewReader("m v=1 1\n"))
	req.Header.Set("Authorization", "Token "+s.Token())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write with token: %s", resp.Status)
	}
	if got := s.Query(`SELECT count(v) FROM m`); len(got) != 1 {
		t.Fatalf("count = %+v", got)
	}
}

// outcome records how StartWith ended on a fake testing.TB.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper() {}
func (o *outcome) Skip(args ...any) {
	o.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcome) Fatal(args ...any) {
	o.failed = fmt.Sprint(args...)
	runtime.Goexit()
}
func (o *outcome) Fatalf(format string, args ...any) { o.Fatal(fmt.Sprintf(format, args...)) }

func startOn(tb *outcome) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(tb)
	}()
	<-done
}

func TestMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-influxd")
	t.Setenv(EnvBinary, missing)

	t.Setenv(EnvRequire, "")
	o := &outcome{TB: t}
	startOn(o)
	if o.skipped == "" || o.failed != "" {
		t.Fatalf("without %s: skipped=%q failed=%q, want a skip", EnvRequire, o.skipped, o.failed)
	}
	want := "scripts/influxd.sh" // how to install it
	if testing.Short() {
		want = "-short"
	}
	if !strings.Contains(o.skipped, want) {
		t.Errorf("skip message %q does not say %q", o.skipped, want)
	}

	t.Setenv(EnvRequire, "1")
	o = &outcome{TB: t}
	startOn(o)
	if o.failed == "" || !strings.Contains(o.failed, missing) {
		t.Fatalf("with %s=1: skipped=%q failed=%q, want a failure naming the path", EnvRequire, o.skipped, o.failed)
	}
}
