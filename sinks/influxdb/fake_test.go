package influxdb

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeInflux speaks the parts of InfluxDB's HTTP API the sink and the
// client use: /ping, /health and /api/v2/write. Like InfluxDB it stores
// one point per series key and timestamp. What a write answers is decided
// by reply; the default stores everything and answers 204.
type fakeInflux struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []fakeRequest
	stored   map[string]string // "series timestamp" -> fields
	reply    func(r *fakeRequest) fakeReply
}

type fakeRequest struct {
	Query  url.Values
	Header http.Header
	Lines  []string // the body's lines (test lines hold no newlines)
	Status int      // what was answered
}

type fakeReply struct {
	status int
	header map[string]string
	body   string
	store  []string // lines to store (nil: none; with status 2xx: all)
}

func newFake(t *testing.T, reply func(r *fakeRequest) fakeReply) *fakeInflux {
	f := &fakeInflux{stored: map[string]string{}, reply: reply}
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Influxdb-Version", "fake")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"influxdb","status":"pass","message":"ready for queries and writes"}`)
	})
	mux.HandleFunc("/api/v2/write", f.write)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeInflux) write(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, `{"error":"read"}`, http.StatusBadRequest)
		return
	}
	req := fakeRequest{Query: r.URL.Query(), Header: r.Header.Clone()}
	for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		req.Lines = append(req.Lines, l)
	}

	f.mu.Lock()
	rep := fakeReply{status: http.StatusNoContent}
	if f.reply != nil {
		rep = f.reply(&req)
	}
	store := rep.store
	if rep.status/100 == 2 && store == nil {
		store = req.Lines
	}
	for _, l := range store {
		parts := strings.Split(l, " ") // series, fields, time
		f.stored[parts[0]+" "+parts[2]] = parts[1]
	}
	req.Status = rep.status
	f.requests = append(f.requests, req)
	f.mu.Unlock()

	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body != "" && strings.HasPrefix(rep.body, "{") {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

// storedLines returns what is stored, as "series fields time" lines.
func (f *fakeInflux) storedSet() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.stored))
	for k, v := range f.stored {
		out[k] = v
	}
	return out
}

func (f *fakeInflux) reqs() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// without returns lines minus those containing any of subs.
func without(lines []string, subs ...string) (keep, drop []string) {
	for _, l := range lines {
		bad := false
		for _, s := range subs {
			if strings.Contains(l, s) {
				bad = true
			}
		}
		if bad {
			drop = append(drop, l)
		} else {
			keep = append(keep, l)
		}
	}
	return keep, drop
}
