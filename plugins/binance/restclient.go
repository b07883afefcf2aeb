package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/backoff"
)

// restWeight is an endpoint's request weight, as Binance documents it
// (depth's depends on the limit asked for).
func restWeight(m Market, endpoint string, limit int) int {
	switch endpoint {
	case "depth":
		if m.futures() {
			switch {
			case limit <= 50:
				return 2
			case limit <= 100:
				return 5
			case limit <= 500:
				return 10
			}
			return 20
		}
		switch {
		case limit <= 100:
			return 5
		case limit <= 500:
			return 25
		case limit <= 1000:
			return 50
		}
		return 250
	case "aggTrades":
		if m.futures() {
			return 20
		}
		return 4
	case "historicalTrades":
		if m.futures() {
			return 20
		}
		return 25
	}
	return 1
}

// pageLimit is the most rows one request of a trades endpoint returns.
func pageLimit(m Market, endpoint string) int {
	if endpoint == "historicalTrades" && m.futures() {
		return 500
	}
	return 1000
}

// snapshotLimit is the depth of the REST snapshot a local book starts
// from: deep enough that the emitted levels stay filled when the price
// moves (five times book_depth), in the cheapest weight tier that holds
// it. Levels past the snapshot are known only once they change.
func snapshotLimit(bookDepth int) int {
	switch n := 5 * bookDepth; {
	case n <= 100:
		return 100
	case n <= 500:
		return 500
	}
	return 1000
}

// restPath is where a market's REST endpoints live.
func restPath(m Market, endpoint string) string {
	switch m {
	case USDM:
		return "/fapi/v1/" + endpoint
	case COINM:
		return "/dapi/v1/" + endpoint
	}
	return "/api/v3/" + endpoint
}

// RESTError is a non-2xx REST answer.
type RESTError struct {
	Status     int
	Code       int64  // Binance's error code, when the body had one
	Msg        string // Binance's message, or the start of the body
	RetryAfter time.Duration
}

func (e *RESTError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("HTTP %d, binance code %d: %s", e.Status, e.Code, e.Msg)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg)
}

// Permanent reports whether retrying the same request cannot help: a 4xx
// other than 429 (rate limit), 418 (IP ban) and 408.
func (e *RESTError) Permanent() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusTeapot, http.StatusRequestTimeout:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

// weightGate keeps this feed's REST weight under its limit. Binance counts
// weight per IP in one-minute windows aligned to the minute and reports
// the window's total in X-MBX-USED-WEIGHT-1M; the gate reserves a
// request's weight before sending, takes the header as the truth after,
// and when the next request would pass the limit it waits for the next
// window. A 429 or 418 blocks every request until its Retry-After.
type weightGate struct {
	mu     sync.Mutex
	limit  int
	window int64 // unix minute that used counts
	used   int
	until  time.Time // no request before this (Retry-After)
}

// reserve takes weight w at now, or says how long to wait first.
func (g *weightGate) reserve(now time.Time, w int) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.until) {
		return g.until.Sub(now)
	}
	if m := now.Unix() / 60; m != g.window {
		g.window, g.used = m, 0
	}
	if g.used > 0 && g.used+w > g.limit {
		next := time.Unix((g.window+1)*60, 0)
		return next.Sub(now) + 100*time.Millisecond // past the exchange's clock skew
	}
	g.used += w
	return 0
}

// observe records the used weight an answer reported at now.
func (g *weightGate) observe(now time.Time, used int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Unix()/60 == g.window && used > g.used {
		g.used = used
	}
}

// block refuses requests until now+d.
func (g *weightGate) block(now time.Time, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := now.Add(d); t.After(g.until) {
		g.until = t
	}
}

// restClient gets Binance REST market data within the weight limit.
type restClient struct {
	base   string
	market Market
	apiKey string
	http   *http.Client
	gate   weightGate
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	// attempts bounds the tries of one request over retryable failures.
	attempts int
}

func newRESTClient(cfg *settings) *restClient {
	return &restClient{
		base:     cfg.restURL,
		market:   cfg.market,
		apiKey:   cfg.apiKey,
		http:     &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		gate:     weightGate{limit: cfg.weightLimit},
		now:      time.Now,
		sleep:    backoff.Sleep,
		attempts: 5,
	}
}

// get fetches one endpoint. Rate limits (429, 418 with Retry-After), 5xx
// and network errors are retried with backoff up to attempts times; other
// failures return at once, a *RESTError for an HTTP error.
func (c *restClient) get(ctx context.Context, endpoint string, q url.Values) ([]byte, error) {
	limit, _ := strconv.Atoi(q.Get("limit"))
	w := restWeight(c.market, endpoint, limit)
	u := c.base + restPath(c.market, endpoint) + "?" + q.Encode()
	bo := backoff.New(backoff.Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second})
	var lastErr error
	for attempt := 0; attempt < c.attempts; attempt++ {
		for {
			wait := c.gate.reserve(c.now(), w)
			if wait == 0 {
				break
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		body, err := c.do(ctx, endpoint, u)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		var re *RESTError
		if errors.As(err, &re) {
			if re.Permanent() {
				return nil, err
			}
			if re.RetryAfter > 0 {
				c.gate.block(c.now(), re.RetryAfter)
				continue // reserve waits it out
			}
		}
		if err := c.sleep(ctx, bo.Next()); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: giving up after %d attempts: %w", endpoint, c.attempts, lastErr)
}

func (c *restClient) do(ctx context.Context, endpoint, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" && endpoint == "historicalTrades" {
		req.Header.Set("X-MBX-APIKEY", c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if used, err := strconv.Atoi(resp.Header.Get("X-MBX-USED-WEIGHT-1M")); err == nil {
		c.gate.observe(c.now(), used)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: read body: %w", endpoint, err)
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	re := &RESTError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	var be struct {
		Code int64  `json:"code"`
		Msg  string `json:"msg"`
	}
	if json.Unmarshal(body, &be) == nil && be.Msg != "" {
		re.Code, re.Msg = be.Code, be.Msg
	} else {
		re.Msg = string(body[:min(len(body), 200)])
	}
	return nil, fmt.Errorf("%s: %w", endpoint, re)
}

// retryAfter reads a Retry-After header in seconds (Binance's form).
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
