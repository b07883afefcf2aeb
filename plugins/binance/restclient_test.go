package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/backoff"
)

func TestWeightGate(t *testing.T) {
	t0 := time.Unix(28_333_334*60+40, 0) // 40 s into a minute
	g := weightGate{limit: 100}
	if d := g.reserve(t0, 60); d != 0 {
		t.Fatalf("first request waits %v", d)
	}
	if d := g.reserve(t0, 30); d != 0 {
		t.Fatalf("second request within the limit waits %v", d)
	}
	// 90 used: 20 more would pass the limit, so wait for the next minute.
	if d := g.reserve(t0, 20); d != 20*time.Second+100*time.Millisecond {
		t.Fatalf("over the limit: wait %v, want the rest of the minute", d)
	}
	// The exchange says the IP has used more than we did (other clients).
	g2 := weightGate{limit: 100}
	g2.reserve(t0, 5)
	g2.observe(t0, 99)
	if d := g2.reserve(t0, 5); d == 0 {
		t.Fatal("the X-MBX-USED-WEIGHT header was not taken into account")
	}
	// A new minute starts afresh.
	if d := g.reserve(t0.Add(20*time.Second), 20); d != 0 {
		t.Fatalf("new window still waits %v", d)
	}
	// Retry-After blocks every request.
	g.block(t0.Add(20*time.Second), 7*time.Second)
	if d := g.reserve(t0.Add(21*time.Second), 1); d != 6*time.Second {
		t.Fatalf("during Retry-After: wait %v, want 6s", d)
	}
}

// fakeREST answers with a scripted sequence of statuses.
type fakeREST struct {
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	paths    []string
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paths = append(f.paths, r.URL.Path+"?"+r.URL.RawQuery+" key="+r.Header.Get("X-MBX-APIKEY"))
	i := len(f.paths) - 1
	status := http.StatusOK
	if i < len(f.statuses) {
		status = f.statuses[i]
	}
	if i < len(f.headers) {
		for k, v := range f.headers[i] {
			w.Header()[k] = v
		}
	}
	w.Header().Set("X-MBX-USED-WEIGHT-1M", "10")
	if status != http.StatusOK {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":-1003,"msg":"status %d"}`, status)
		return
	}
	fmt.Fprint(w, `[]`)
}

func newTestREST(t *testing.T, h http.Handler, m Market) (*restClient, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := newRESTClient(&settings{restURL: srv.URL, market: m, weightLimit: 1000, apiKey: "k"})
	var slept []time.Duration
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	c.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		now = now.Add(d)
		return ctx.Err()
	}
	return c, &slept
}

func TestRESTHonoursRetryAfter(t *testing.T) {
	f := &fakeREST{
		statuses: []int{http.StatusTooManyRequests, http.StatusTeapot, http.StatusOK},
		headers:  []http.Header{{"Retry-After": {"3"}}, {"Retry-After": {"120"}}},
	}
	c, slept := newTestREST(t, f, USDM)
	body, err := c.get(context.Background(), "historicalTrades", url.Values{"symbol": {"BTCUSDT"}, "fromId": {"5"}})
	if err != nil || string(body) != "[]" {
		t.Fatalf("get: %q, %v", body, err)
	}
	if want := []time.Duration{3 * time.Second, 120 * time.Second}; !slices.Equal(*slept, want) {
		t.Fatalf("slept %v, want %v (the Retry-After of each answer)", *slept, want)
	}
	if want := "/fapi/v1/historicalTrades?fromId=5&symbol=BTCUSDT key=k"; f.paths[0] != want {
		t.Fatalf("request %q, want %q", f.paths[0], want)
	}
}

func TestRESTPermanentErrorIsNotRetried(t *testing.T) {
	f := &fakeREST{statuses: []int{http.StatusBadRequest}}
	c, slept := newTestREST(t, f, Spot)
	_, err := c.get(context.Background(), "aggTrades", url.Values{"symbol": {"NOPE"}})
	var re *RESTError
	if !errors.As(err, &re) || re.Status != 400 || re.Code != -1003 || !re.Permanent() {
		t.Fatalf("error %v, want a permanent *RESTError 400", err)
	}
	if len(f.paths) != 1 || len(*slept) != 0 {
		t.Fatalf("%d requests and sleeps %v, want one request and no retry", len(f.paths), *slept)
	}
	if f.paths[0] != "/api/v3/aggTrades?symbol=NOPE key=" {
		t.Fatalf("request %q: the API key goes with historicalTrades only", f.paths[0])
	}
}

func TestRESTServerErrorsRetriedThenGivenUp(t *testing.T) {
	f := &fakeREST{statuses: []int{500, 502, 503, 500, 500, 500}}
	c, slept := newTestREST(t, f, Spot)
	_, err := c.get(context.Background(), "depth", url.Values{"symbol": {"BTCUSDT"}})
	if err == nil || len(f.paths) != c.attempts {
		t.Fatalf("err %v after %d requests, want failure after %d", err, len(f.paths), c.attempts)
	}
	if len(*slept) != c.attempts {
		t.Fatalf("slept %v: want a backoff after each failure", *slept)
	}
}

func TestRetryDelay(t *testing.T) {
	bo := func() *backoff.Backoff { return backoff.New(backoff.Policy{Initial: time.Second, Max: time.Second}) }
	for _, tc := range []struct {
		err      error
		min, max time.Duration
	}{
		{&HandshakeError{Status: 429, RetryAfter: 90 * time.Second}, 90 * time.Second, 90 * time.Second},
		{&HandshakeError{Status: 418}, rateLimitedRetry, rateLimitedRetry},
		{&HandshakeError{Status: 403}, refusedRetry, refusedRetry},
		{&HandshakeError{Status: 400}, refusedRetry, refusedRetry},
		{fmt.Errorf("subscribe: %w", &ServerError{Code: 2, Msg: "Invalid request"}), refusedRetry, refusedRetry},
		{&HandshakeError{Status: 502}, 500 * time.Millisecond, time.Second},
		{errors.New("dial: connection refused"), 500 * time.Millisecond, time.Second},
	} {
		if d := retryDelay(tc.err, bo()); d < tc.min || d > tc.max {
			t.Errorf("retryDelay(%v) = %v, want within [%v, %v]", tc.err, d, tc.min, tc.max)
		}
	}
}
