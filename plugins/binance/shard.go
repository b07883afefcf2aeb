package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/plugins/sdk/backoff"
)

// Reconnect pacing.
const (
	// refusedRetry is the wait after a handshake refused with a 4xx other
	// than 429 and 418 (a WAF block, a bad path, an invalid stream): the
	// same request will be refused again, so it is not retried in a loop.
	refusedRetry = 5 * time.Minute
	// rateLimitedRetry is the wait after a 429 or 418 without Retry-After.
	rateLimitedRetry = time.Minute
	// healthyAfter is how long a connection must have lived for the next
	// reconnect to start again from the shortest backoff.
	healthyAfter = time.Minute
	// handoverOverlap is how long a replacement and the connection it
	// replaces both deliver; the runner drops what arrives twice.
	handoverOverlap = time.Second
	// Binance allows 300 connection attempts per 5 minutes per IP.
	dialRate  = 1.0 // per second
	dialBurst = 5
)

var reconnectPolicy = backoff.Policy{Initial: 250 * time.Millisecond, Max: 30 * time.Second}

// shard is one connection's worth of streams: at most
// streams_per_connection, all on one route. A supervisor goroutine keeps
// one connection open for it, reconnecting, rotating and replacing it.
type shard struct {
	idx     int
	route   string   // "" or, on USD-M, "/public" or "/market"
	streams []string // wire names
	replace chan replaceReq

	// Owned by the runner's goroutine.
	up      bool
	upSince time.Time
}

// replaceReq asks a supervisor to replace its connection by a new one
// (opened before the old one closes).
type replaceReq struct {
	conn   *wsConn // the connection it is about; nil: whichever is current
	kind   string  // the feed event kind to report once replaced
	reason string
}

// requestReplace asks, without blocking, for the shard's connection to be
// replaced. A request already waiting covers this one.
func (sh *shard) requestReplace(r replaceReq) {
	select {
	case sh.replace <- r:
	default:
	}
}

// planShards splits the configured streams into shards: symbol by
// symbol, each route apart, at most perConn streams a shard.
func planShards(cfg *settings) []*shard {
	routes := []string{""}
	if cfg.wsRoutes {
		routes = []string{"/public", "/market"}
	}
	var out []*shard
	for _, route := range routes {
		var cur *shard
		for _, sym := range cfg.symbols {
			for _, k := range cfg.kinds {
				if cfg.wsRoutes && k.publicRoute() != (route == "/public") {
					continue
				}
				if cur == nil || len(cur.streams) == cfg.perConn {
					cur = &shard{idx: len(out), route: route, replace: make(chan replaceReq, 1)}
					out = append(out, cur)
				}
				cur.streams = append(cur.streams, streamName(sym, k))
			}
		}
	}
	return out
}

// dialLimiter is a token bucket over connection attempts, shared by every
// shard of the feed.
type dialLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (l *dialLimiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		if l.last.IsZero() {
			l.tokens = dialBurst
		} else {
			l.tokens = min(dialBurst, l.tokens+now.Sub(l.last).Seconds()*dialRate)
		}
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - l.tokens) / dialRate * float64(time.Second))
		l.mu.Unlock()
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retryDelay is how long to wait before dialing again after err.
func retryDelay(err error, bo *backoff.Backoff) time.Duration {
	var he *HandshakeError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusTooManyRequests || he.Status == http.StatusTeapot:
			d := he.RetryAfter
			if d <= 0 {
				d = rateLimitedRetry
			}
			return max(d, bo.Next())
		case he.Status >= 400 && he.Status < 500:
			return refusedRetry
		}
	}
	var se *ServerError
	if errors.As(err, &se) {
		return refusedRetry // Binance rejected a SUBSCRIBE: retrying will not change its mind
	}
	return bo.Next()
}

// connect opens one connection for a shard, within the dial rate.
func (r *runner) connect(ctx context.Context, sh *shard) (*wsConn, error) {
	if err := r.dials.wait(ctx); err != nil {
		return nil, err
	}
	onControl := func(c *wsConn, ev Event) { r.control(sh, c, ev) }
	return dialConn(ctx, r.cfg.wsURL+sh.route, sh.streams, r.frames, r.log.With("shard", sh.idx),
		onControl, r.badFrame, r.cfg.market)
}

// supervise keeps a connection open for sh until ctx ends: it reconnects
// with backoff when the connection ends, and replaces it, opening the new
// one before closing the old, at rotate_after and on request (a stale
// stream, a serverShutdown notice).
func (r *runner) supervise(ctx context.Context, sh *shard) {
	log := r.log.With("shard", sh.idx)
	bo := backoff.New(reconnectPolicy)
	var cur *wsConn
	defer func() {
		if cur != nil {
			cur.close(websocket.CloseNormalClosure, "")
			<-cur.done
		}
	}()
	lost := false // a connection ended: the next one is a reconnect
	for {
		if cur == nil {
			c, err := r.connect(ctx, sh)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := retryDelay(err, bo)
				var he *HandshakeError
				var se *ServerError
				if errors.As(err, &he) || errors.As(err, &se) {
					log.Error("binance refused the connection", "error", err, "retry_in", wait.Round(time.Millisecond).String())
					r.note(ctx, connNote{shard: sh, ev: &feedEvent{kind: FeedServerError,
						message: fmt.Sprintf("connection refused: %v; retrying in %v", err, wait.Round(time.Second))}})
				} else {
					log.Warn("connecting failed", "error", err, "retry_in", wait.Round(time.Millisecond).String())
				}
				if backoff.Sleep(ctx, wait) != nil {
					return
				}
				continue
			}
			cur = c
			log.Info("connected", "conn", c.id, "streams", len(sh.streams))
			n := connNote{shard: sh, up: true}
			if lost {
				n.ev = &feedEvent{kind: FeedReconnect, message: fmt.Sprintf("connection %d carries %d streams again", c.id, len(sh.streams))}
			}
			r.note(ctx, n)
			lost = false
		}
		rotate := time.NewTimer(time.Until(cur.opened.Add(r.cfg.rotateAfter)))
		select {
		case <-ctx.Done():
			rotate.Stop()
			return
		case <-cur.done:
			rotate.Stop()
			lived := time.Since(cur.opened)
			if lived >= healthyAfter {
				bo.Reset()
			}
			wait := bo.Next()
			log.Warn("connection closed", "conn", cur.id, "code", cur.ended.code, "reason", cur.ended.reason,
				"error", cur.ended.err, "lived", lived.Round(time.Millisecond).String(), "retry_in", wait.Round(time.Millisecond).String())
			r.note(ctx, connNote{shard: sh, down: true, ev: &feedEvent{kind: FeedDisconnect,
				message: fmt.Sprintf("connection %d: %v", cur.id, cur.ended)}})
			cur, lost = nil, true
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
		case <-rotate.C:
			cur = r.handover(ctx, sh, cur, bo, FeedRotate, fmt.Sprintf("connection reached rotate_after (%v)", r.cfg.rotateAfter))
		case req := <-sh.replace:
			rotate.Stop()
			if req.conn != nil && req.conn != cur {
				continue // about a connection already replaced
			}
			cur = r.handover(ctx, sh, cur, bo, req.kind, req.reason)
		}
	}
}

// handover opens a replacement for old, lets both deliver for
// handoverOverlap, closes old and returns the replacement. If the
// replacement cannot be opened, old stays, after a pause that the next
// attempt waits for.
func (r *runner) handover(ctx context.Context, sh *shard, old *wsConn, bo *backoff.Backoff, kind, why string) *wsConn {
	log := r.log.With("shard", sh.idx)
	n, err := r.connect(ctx, sh)
	if err != nil {
		if ctx.Err() != nil {
			return old
		}
		wait := retryDelay(err, bo)
		log.Warn("opening a replacement connection failed; keeping the old one", "conn", old.id, "error", err, "retry_in", wait.Round(time.Millisecond).String())
		pause(ctx, old, wait)
		return old
	}
	select {
	case <-time.After(handoverOverlap):
	case <-n.done:
		log.Warn("the replacement connection ended during the handover; keeping the old one",
			"conn", old.id, "replacement", n.id, "code", n.ended.code, "reason", n.ended.reason)
		pause(ctx, old, bo.Next())
		return old
	case <-ctx.Done():
		n.close(websocket.CloseNormalClosure, "")
		<-n.done
		return old
	}
	old.close(websocket.CloseNormalClosure, "replaced")
	<-old.done
	log.Info("connection replaced", "old", old.id, "new", n.id, "why", why)
	r.note(ctx, connNote{shard: sh, up: true, ev: &feedEvent{kind: kind,
		message: fmt.Sprintf("connection %d replaced by %d: %s", old.id, n.id, why)}})
	return n
}

// pause waits d, or less if c ends or ctx does, so that a failed
// replacement is not retried at once.
func pause(ctx context.Context, c *wsConn, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.done:
	case <-ctx.Done():
	}
}
