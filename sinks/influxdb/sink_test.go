package influxdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/sinks"
)

func openSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	if cfg.Bucket == "" {
		cfg.Bucket = "db/rp"
	}
	s := New(cfg, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// points makes n points of measurement "m", each its own series; those
// whose index is in bad carry the field "bad" (the fakes refuse them).
func points(n int, bad ...int) []sluice.Point {
	isBad := map[int]bool{}
	for _, b := range bad {
		isBad[b] = true
	}
	ps := make([]sluice.Point, n)
	for i := range ps {
		ps[i] = sluice.Point{
			Measurement: "m",
			Tags:        []sluice.Tag{{Key: "k", Value: fmt.Sprintf("s%05d", i)}},
			Fields:      []sluice.Field{{Key: "v", Value: sluice.Float(float64(i) + 0.5)}},
			Time:        time.Unix(1700000000, int64(i)),
		}
		if isBad[i] {
			ps[i].Fields = append(ps[i].Fields, sluice.Field{Key: "bad", Value: sluice.Bool(true)})
		}
	}
	return ps
}

func wantStored(t *testing.T, f *fakeInflux, n int, bad ...int) {
	t.Helper()
	isBad := map[int]bool{}
	for _, b := range bad {
		isBad[b] = true
	}
	got := f.storedSet()
	for i := range n {
		key := fmt.Sprintf("m,k=s%05d %d", i, 1700000000000000000+i)
		_, ok := got[key]
		if ok == isBad[i] {
			t.Errorf("point %d: stored %v, want %v", i, ok, !isBad[i])
		}
	}
	if len(got) != n-len(bad) {
		t.Errorf("stored %d points, want %d", len(got), n-len(bad))
	}
}

func TestWriteRequest(t *testing.T) {
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			f := newFake(t, nil)
			s := openSink(t, Config{URL: f.srv.URL, Org: "-", Bucket: "telegraf/autogen", Token: "user:pass", Gzip: gz})
			if err := s.Write(context.Background(), points(3)); err != nil {
				t.Fatal(err)
			}
			wantStored(t, f, 3)
			reqs := f.reqs()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			for k, want := range map[string]string{"org": "-", "bucket": "telegraf/autogen", "precision": "ns"} {
				if got := r.Query.Get(k); got != want {
					t.Errorf("query %s = %q, want %q", k, got, want)
				}
			}
			if got := r.Header.Get("Authorization"); got != "Token user:pass" {
				t.Errorf("Authorization = %q", got)
			}
			if got, want := r.Header.Get("Content-Encoding") == "gzip", gz; got != want {
				t.Errorf("gzip = %v, want %v", got, want)
			}
			if ua := r.Header.Get("User-Agent"); !strings.Contains(ua, "influxdb-client-go") {
				t.Errorf("User-Agent %q: not sent through the client library", ua)
			}
		})
	}
}

func TestWriteNoToken(t *testing.T) {
	f := newFake(t, nil)
	s := openSink(t, Config{URL: f.srv.URL, Precision: "ms"})
	if err := s.Write(context.Background(), points(1)); err != nil {
		t.Fatal(err)
	}
	r := f.reqs()[0]
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
	if got := r.Query.Get("precision"); got != "ms" {
		t.Errorf("precision = %q", got)
	}
	if got := r.Lines[0]; got != "m,k=s00000 v=0.5 1700000000000" {
		t.Errorf("line = %q", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"429 seconds", 429, "7", 7 * time.Second},
		{"503 seconds", 503, "120", 2 * time.Minute},
		{"429 http date", 429, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"503 http date", 503, now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{"429 absent", 429, "", defaultRetryAfter},
		{"503 absent", 503, "", defaultRetryAfter},
		{"429 garbage", 429, "soon", defaultRetryAfter},
		{"503 past date", 503, now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(*fakeRequest) fakeReply {
				h := map[string]string{}
				if tt.header != "" {
					h["Retry-After"] = tt.header
				}
				return fakeReply{status: tt.status, header: h, body: `{"code":"too many requests","message":"slow down"}`}
			})
			s := openSink(t, Config{URL: f.srv.URL, Gzip: true})
			s.now = func() time.Time { return now }
			err := s.Write(context.Background(), points(10))
			after, ok := sinks.AsRetryAfter(err)
			if !ok {
				t.Fatalf("error %v (%T), want *sinks.RetryAfterError", err, err)
			}
			if after != tt.want {
				t.Errorf("after = %v, want %v", after, tt.want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.status {
				t.Errorf("error %v does not carry status %d", err, tt.status)
			}
			if len(f.reqs()) != 1 {
				t.Errorf("%d requests, want exactly one attempt", len(f.reqs()))
			}
		})
	}
}

func TestFailedAndTransient(t *testing.T) {
	tests := []struct {
		status int
		body   string
		failed bool
	}{
		{401, `{"code":"unauthorized","message":"unauthorized access"}`, true},
		{403, `{"error":"\"bob\" user is not authorized to write to database \"db\""}`, true},
		{404, `{"error":"database not found: \"db\""}`, true},
		{400, `{"error":"database is required"}`, true},
		{400, `{"code":"invalid","message":"invalid precision \"xs\""}`, true},
		{405, ``, true},
		{500, `{"error":"timeout"}`, false},
		{502, `bad gateway`, false},
		{504, ``, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, " ", tt.body), func(t *testing.T) {
			f := newFake(t, func(*fakeRequest) fakeReply { return fakeReply{status: tt.status, body: tt.body} })
			s := openSink(t, Config{URL: f.srv.URL, Gzip: true})
			err := s.Write(context.Background(), points(4))
			if err == nil {
				t.Fatal("no error")
			}
			if got := sinks.IsFailed(err); got != tt.failed {
				t.Errorf("IsFailed(%v) = %v, want %v", err, got, tt.failed)
			}
			if _, ok := sinks.AsRetryAfter(err); ok {
				t.Errorf("%v is a RetryAfterError", err)
			}
			var rej *sinks.RejectedError
			if errors.As(err, &rej) {
				t.Errorf("%v is a RejectedError", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.status {
				t.Errorf("error %v does not carry status %d", err, tt.status)
			}
			if tt.body != "" && !strings.Contains(err.Error(), strings.Trim(bodyMessage([]byte(tt.body)), `"`)) {
				t.Errorf("error %q does not carry the server's message", err)
			}
			if n := len(f.reqs()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	f := newFake(t, nil)
	s := openSink(t, Config{URL: f.srv.URL, Gzip: true})
	if err := s.Write(context.Background(), points(2)); err != nil {
		t.Fatal(err)
	}
	f.srv.Close()
	err := s.Write(context.Background(), points(2))
	if err == nil {
		t.Fatal("write to a closed server succeeded")
	}
	var rej *sinks.RejectedError
	if sinks.IsFailed(err) || errors.As(err, &rej) {
		t.Fatalf("network error %v classified as %T, want a plain error", err, err)
	}
	if _, ok := sinks.AsRetryAfter(err); ok {
		t.Fatalf("network error %v is a RetryAfterError", err)
	}
}

func TestContextCancelled(t *testing.T) {
	f := newFake(t, nil)
	s := openSink(t, Config{URL: f.srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, points(2))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestTooLargeSplits(t *testing.T) {
	const limit, n = 100, 1000
	f := newFake(t, func(r *fakeRequest) fakeReply {
		if len(r.Lines) > limit {
			return fakeReply{status: 413, body: `{"error":"Request Entity Too Large"}`}
		}
		return fakeReply{status: 204}
	})
	s := openSink(t, Config{URL: f.srv.URL, Gzip: true})
	if err := s.Write(context.Background(), points(n)); err != nil {
		t.Fatal(err)
	}
	wantStored(t, f, n)
	// Every point reached the server in exactly one accepted request.
	seen := map[string]int{}
	accepted := 0
	for _, r := range f.reqs() {
		if r.Status != 204 {
			continue
		}
		accepted++
		for _, l := range r.Lines {
			seen[l]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct points accepted, want %d", len(seen), n)
	}
	for l, c := range seen {
		if c != 1 {
			t.Errorf("%q accepted %d times", l, c)
		}
	}
	if accepted < n/limit {
		t.Errorf("%d accepted requests, want at least %d", accepted, n/limit)
	}
}

func TestTooLargeSinglePoint(t *testing.T) {
	f := newFake(t, func(r *fakeRequest) fakeReply {
		if _, bad := without(r.Lines, "bad"); len(bad) > 0 {
			return fakeReply{status: 413}
		}
		return fakeReply{status: 204}
	})
	s := openSink(t, Config{URL: f.srv.URL})
	err := s.Write(context.Background(), points(9, 4))
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 1 {
		t.Fatalf("error %v, want 1 rejected", err)
	}
	wantStored(t, f, 9, 4)
}

func TestTooLargeThenUnavailable(t *testing.T) {
	f := newFake(t, func(r *fakeRequest) fakeReply {
		switch {
		case len(r.Lines) > 10:
			return fakeReply{status: 413}
		case strings.Contains(r.Lines[0], "s00010"):
			return fakeReply{status: 503, header: map[string]string{"Retry-After": "2"}}
		}
		return fakeReply{status: 204}
	})
	s := openSink(t, Config{URL: f.srv.URL})
	err := s.Write(context.Background(), points(20))
	if d, ok := sinks.AsRetryAfter(err); !ok || d != 2*time.Second {
		t.Fatalf("error %v, want RetryAfter 2s", err)
	}
}

// Partial writes in each server's words. The fake refuses the lines that
// carry the field "bad".
func TestPartialWrite(t *testing.T) {
	unableToParse := func(lines []string, sep string) string {
		var parts []string
		for _, l := range lines {
			parts = append(parts, "unable to parse '"+l+"': invalid field format")
		}
		return strings.Join(parts, sep)
	}
	jsonStr := func(s string) string { return fmt.Sprintf("%q", s) }
	tests := []struct {
		name string
		// reply answers a request containing bad lines.
		reply func(keep, drop []string, all []string) fakeReply
		// maxRequests bounds the requests one Write may make (0: any).
		maxRequests int
	}{
		{
			name: "1.8 unable to parse, rest written",
			reply: func(keep, drop, _ []string) fakeReply {
				return fakeReply{status: 400, store: keep, body: `{"error":` + jsonStr("partial write: "+unableToParse(drop, "\n")+" dropped=0") + `}`}
			},
			maxRequests: 1,
		},
		{
			name: "1.8 type conflict, no line named",
			reply: func(keep, drop, _ []string) fakeReply {
				return fakeReply{status: 400, store: keep, body: `{"error":` + jsonStr(fmt.Sprintf(`partial write: field type conflict: input field "bad" on measurement "m" is type boolean, already exists as type float dropped=%d`, len(drop))) + `}`}
			},
		},
		{
			name: "1.8 field type conflict within the batch, nothing written",
			reply: func(_, _, _ []string) fakeReply {
				return fakeReply{status: 400, body: `{"error":"field type conflict"}`}
			},
		},
		{
			name: "2.x unable to parse, nothing written",
			reply: func(_, drop, _ []string) fakeReply {
				return fakeReply{status: 400, body: `{"code":"invalid","message":` + jsonStr(unableToParse(drop[:1], "")) + `}`}
			},
		},
		{
			name: "2.x partial write, no line named",
			reply: func(keep, drop, _ []string) fakeReply {
				return fakeReply{status: 422, store: keep, body: `{"code":"unprocessable entity","message":` + jsonStr(fmt.Sprintf("failure writing points to database: partial write: points beyond retention policy dropped=%d", len(drop))) + `}`}
			},
		},
		{
			name: "cloud line numbers, nothing written",
			reply: func(_, drop, all []string) fakeReply {
				var msgs []string
				first := 0
				for i, l := range all {
					for _, d := range drop {
						if l == d {
							if first == 0 {
								first = i + 1
							}
							msgs = append(msgs, fmt.Sprintf("error parsing line %d (1-based): Invalid field", i+1))
						}
					}
				}
				return fakeReply{status: 400, body: fmt.Sprintf(`{"code":"invalid","line":%d,"message":%s}`, first,
					jsonStr(fmt.Sprintf("failed to parse line protocol: errors encountered on %d lines:\n", len(msgs))+strings.Join(msgs, "\n")))}
			},
			maxRequests: 2,
		},
		{
			name: "3.x per-line data, rest written",
			reply: func(keep, drop, all []string) fakeReply {
				var data []string
				for i, l := range all {
					for _, d := range drop {
						if l == d {
							data = append(data, fmt.Sprintf(`{"original_line":%s,"line_number":%d,"error_message":"invalid column type"}`, jsonStr(l), i+1))
						}
					}
				}
				return fakeReply{status: 400, store: keep, body: `{"error":"partial write of line protocol occurred","data":[` + strings.Join(data, ",") + `]}`}
			},
			maxRequests: 2,
		},
	}
	bad := []int{0, 17, 18, 63, 99}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(r *fakeRequest) fakeReply {
				keep, drop := without(r.Lines, "bad")
				if len(drop) == 0 {
					return fakeReply{status: 204}
				}
				return tt.reply(keep, drop, r.Lines)
			})
			s := openSink(t, Config{URL: f.srv.URL, Gzip: true})
			err := s.Write(context.Background(), points(100, bad...))
			var rej *sinks.RejectedError
			if !errors.As(err, &rej) {
				t.Fatalf("error %v (%T), want *sinks.RejectedError", err, err)
			}
			if rej.Rejected != len(bad) {
				t.Errorf("Rejected = %d, want %d", rej.Rejected, len(bad))
			}
			if !strings.Contains(rej.Sample, "bad=t") {
				t.Errorf("Sample %q does not show a refused line", rej.Sample)
			}
			wantStored(t, f, 100, bad...)
			if n := len(f.reqs()); tt.maxRequests > 0 && n > tt.maxRequests {
				t.Errorf("%d requests, want at most %d", n, tt.maxRequests)
			}
		})
	}
}

func TestPartialWriteAllDropped(t *testing.T) {
	f := newFake(t, func(r *fakeRequest) fakeReply {
		return fakeReply{status: 400, body: fmt.Sprintf(`{"error":"partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type string dropped=%d"}`, len(r.Lines))}
	})
	s := openSink(t, Config{URL: f.srv.URL})
	err := s.Write(context.Background(), points(50))
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 50 {
		t.Fatalf("error %v, want 50 rejected", err)
	}
	if n := len(f.reqs()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestEncoderRejectsCountedWithServerRejects(t *testing.T) {
	f := newFake(t, func(r *fakeRequest) fakeReply {
		keep, drop := without(r.Lines, "bad")
		if len(drop) == 0 {
			return fakeReply{status: 204}
		}
		return fakeReply{status: 400, store: keep, body: fmt.Sprintf(`{"error":"partial write: unable to parse '%s': bad dropped=0"}`, drop[0])}
	})
	s := openSink(t, Config{URL: f.srv.URL})
	ps := points(5, 1)
	ps[3].Fields[0].Value = sluice.Float(nanF())
	err := s.Write(context.Background(), ps)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 2 {
		t.Fatalf("error %v, want 2 rejected", err)
	}
	if !strings.Contains(rej.Sample, "NaN") {
		t.Errorf("Sample %q: want the first rejected point (the NaN)", rej.Sample)
	}
	wantStored(t, f, 5, 1, 3)
}

func nanF() float64 { var z float64; return z / z }

func TestAllRejectedByEncoderSendsNothing(t *testing.T) {
	f := newFake(t, nil)
	s := openSink(t, Config{URL: f.srv.URL})
	ps := points(2)
	for i := range ps {
		ps[i].Measurement = "#comment"
	}
	var rej *sinks.RejectedError
	if err := s.Write(context.Background(), ps); !errors.As(err, &rej) || rej.Rejected != 2 {
		t.Fatalf("error %v, want 2 rejected", err)
	}
	if err := s.Write(context.Background(), nil); err != nil {
		t.Fatalf("empty write: %v", err)
	}
	if n := len(f.reqs()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

func TestOpenValidates(t *testing.T) {
	s := New(Config{URL: "ftp://x", Precision: "m", Timeout: -1, TLS: TLS{CAFile: "/nonexistent", CertFile: "x"}}, nil)
	err := s.Open(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"url", "bucket", "precision", "timeout", "ca_file", "tls.key_file: missing: cert_file is set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := s.Write(context.Background(), points(1)); err == nil {
		t.Error("write on an unopened sink succeeded")
	}
}

func TestOpenWithServerDown(t *testing.T) {
	f := newFake(t, nil)
	f.srv.Close()
	s := New(Config{URL: f.srv.URL, Bucket: "b"}, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("open with the server down: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Write(context.Background(), points(1)); err == nil {
		t.Error("write after close succeeded")
	}
}

func TestIdentityNeedsNanoseconds(t *testing.T) {
	f := newFake(t, nil)
	s := openSink(t, Config{URL: f.srv.URL, Precision: "ms"})
	err := s.Declare(context.Background(), []sluice.Measurement{{Name: "m", Unique: []string{"k", "id"}}})
	if err != nil {
		t.Fatal(err)
	}
	// k is a tag and id absent: the series tells points apart, no offset.
	if err := s.Write(context.Background(), points(3)); err != nil {
		t.Fatal(err)
	}
	// id is a field: its offset needs ns, and ms would merge points.
	ps := points(3)
	ps[1].Fields = append(ps[1].Fields, sluice.Field{Key: "id", Value: sluice.Int(7)})
	err = s.Write(context.Background(), ps)
	if !sinks.IsFailed(err) || !strings.Contains(err.Error(), "precision") {
		t.Fatalf("error %v, want a FailedError about precision", err)
	}
	if n := len(f.reqs()); n != 1 {
		t.Errorf("%d requests, want only the first write's", n)
	}
}
