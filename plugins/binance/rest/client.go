package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Error is a non-2xx REST answer.
type Error struct {
	Status     int
	Code       int64  // Binance's error code, when the body had one
	Msg        string // Binance's message, or the start of the body
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("HTTP %d, binance code %d: %s", e.Status, e.Code, e.Msg)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg)
}

// Permanent reports whether retrying the same request cannot help: a 4xx
// other than 429 (rate limit), 418 (IP ban) and 408.
func (e *Error) Permanent() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusTeapot, http.StatusRequestTimeout:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

// Config is what a Client needs to know.
type Config struct {
	// BaseURL is the REST base URL: scheme, host and any path prefix,
	// without a trailing slash (https://api.binance.com).
	BaseURL string
	Market  market.Market
	// APIKey is sent as X-MBX-APIKEY with historicalTrades requests only.
	APIKey string
	// WeightLimit is the request weight per minute the client stays
	// under.
	WeightLimit int
}

// Client gets Binance REST market data within a weight limit: before each
// request it reserves the request's weight in the current minute, waiting
// for the next minute when the limit would be passed, and takes each
// answer's X-MBX-USED-WEIGHT-1M as the truth (it counts the IP's other
// clients too). A 429 or 418 blocks every request for its Retry-After;
// 5xx and network errors are retried with backoff; other 4xx are not.
//
// New has no side effects; a Client is safe for concurrent use, but the
// source makes its requests from one goroutine so that the gate sees them
// in order.
type Client struct {
	base   string
	market market.Market
	apiKey string
	http   *http.Client
	gate   weightGate
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	// attempts bounds the tries of one request over retryable failures.
	attempts int
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	return &Client{
		base:     cfg.BaseURL,
		market:   cfg.Market,
		apiKey:   cfg.APIKey,
		http:     &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		gate:     weightGate{limit: cfg.WeightLimit},
		now:      time.Now,
		sleep:    backoff.Sleep,
		attempts: 5,
	}
}

// Get fetches one endpoint with query q and returns the answer's body.
// Rate limits (429, 418 with Retry-After), 5xx and network errors are
// retried with backoff up to attempts times; other failures return at
// once, an *Error for an HTTP error.
func (c *Client) Get(ctx context.Context, endpoint string, q url.Values) ([]byte, error) {
	limit, _ := strconv.Atoi(q.Get("limit"))
	w := Weight(c.market, endpoint, limit)
	u := c.base + Path(c.market, endpoint) + "?" + q.Encode()
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
		var re *Error
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

func (c *Client) do(ctx context.Context, endpoint, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" && endpoint == HistoricalTrades {
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
	re := &Error{Status: resp.StatusCode, RetryAfter: RetryAfter(resp.Header)}
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

// CloseIdleConnections closes the connections kept for the next request.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// RetryAfter reads a Retry-After header in seconds, Binance's form: 0 when
// absent or unreadable. A refused WebSocket handshake carries one too.
func RetryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
