package binance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/plugins/binance/wire"
	"github.com/sluicehq/sluice/plugins/sdk"
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
//
// The runner plans which streams a shard carries; once the supervisor
// runs, the runner tells it about changes through push, and the
// supervisor alone touches streams, applying them with UNSUBSCRIBE and
// SUBSCRIBE on its connection (or in its next dial).
type shard struct {
	idx     int
	route   string   // "" or, on USD-M, "/public" or "/market"
	streams []string // wire names; the supervisor's once it runs
	replace chan replaceReq

	mu   sync.Mutex
	ops  []subOp       // changes pushed and not yet applied, in order
	kick chan struct{} // signals ops; capacity 1

	// Owned by the runner's goroutine.
	up      bool
	upSince time.Time
	planned int                // streams the runner has assigned to the shard
	cancel  context.CancelFunc // ends the supervisor; nil until started
}

// subOp is one reconfiguration's change to a shard's streams: the
// unsubscribed ones first, so that the shard never goes past its limit.
type subOp struct {
	unsub, sub []string
}

func newShard(idx int, route string) *shard {
	return &shard{idx: idx, route: route, replace: make(chan replaceReq, 1), kick: make(chan struct{}, 1)}
}

// push queues a change for the supervisor without blocking.
func (sh *shard) push(op subOp) {
	sh.mu.Lock()
	sh.ops = append(sh.ops, op)
	sh.mu.Unlock()
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// takeOps returns the queued changes, applying each to streams.
func (sh *shard) takeOps() []subOp {
	sh.mu.Lock()
	ops := sh.ops
	sh.ops = nil
	sh.mu.Unlock()
	for _, op := range ops {
		sh.streams = slices.DeleteFunc(sh.streams, func(s string) bool { return slices.Contains(op.unsub, s) })
		for _, s := range op.sub {
			if !slices.Contains(sh.streams, s) {
				sh.streams = append(sh.streams, s)
			}
		}
	}
	return ops
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
					cur = newShard(len(out), route)
					out = append(out, cur)
				}
				cur.streams = append(cur.streams, streamName(sym, k))
				cur.planned++
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
	var se *wire.ServerError
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
	onControl := func(c *wsConn, ev wire.Event) { r.control(sh, c, ev) }
	return dialConn(ctx, r.base.wsURL+sh.route, sh.streams, r.frames, r.log.With("shard", sh.idx),
		onControl, r.badFrame, r.base.market)
}

// resubscribe applies the changes pushed to sh: UNSUBSCRIBE and
// SUBSCRIBE on cur, paced like every message and each waiting for its
// ack. If cur ends meanwhile, the reconnect carries the new streams. A
// refusal from Binance is reported; the streams it refused are tried
// again with the next connection.
func (r *runner) resubscribe(ctx context.Context, sh *shard, cur *wsConn, log *slog.Logger) {
	for _, op := range sh.takeOps() {
		var subscribed []string
		for _, req := range []struct {
			method  string
			streams []string
		}{{"UNSUBSCRIBE", op.unsub}, {"SUBSCRIBE", op.sub}} {
			for names := range slices.Chunk(req.streams, maxSubscribeBy) {
				err := cur.request(ctx, req.method, names)
				if err == nil {
					if req.method == "SUBSCRIBE" {
						subscribed = append(subscribed, names...)
					}
					continue
				}
				if ctx.Err() != nil {
					return
				}
				select {
				case <-cur.done:
					// The reconnect dials sh.streams, which has every op.
					r.note(ctx, connNote{shard: sh, subscribed: subscribed})
					return
				default:
				}
				var se *wire.ServerError
				if errors.As(err, &se) {
					log.Error("binance refused a subscription change", "conn", cur.id, "method", req.method, "streams", len(names), "error", err)
					r.note(ctx, connNote{shard: sh, ev: sdk.Event{Kind: sdk.EventServerError,
						Message: fmt.Sprintf("connection %d: %s of %d streams refused: %v", cur.id, req.method, len(names), err)}})
					continue
				}
				// No answer: replace the connection, whose dial carries
				// every stream the shard should have.
				log.Warn("a subscription change went unanswered; replacing the connection", "conn", cur.id, "method", req.method, "error", err)
				sh.requestReplace(replaceReq{conn: cur, kind: FeedReconnect, reason: req.method + " unanswered"})
				r.note(ctx, connNote{shard: sh, subscribed: subscribed})
				return
			}
		}
		log.Info("subscriptions changed", "conn", cur.id, "unsubscribed", len(op.unsub), "subscribed", len(op.sub), "streams", len(sh.streams))
		if len(subscribed) > 0 {
			r.note(ctx, connNote{shard: sh, subscribed: subscribed})
		}
	}
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
			sh.takeOps() // the dial carries them
			c, err := r.connect(ctx, sh)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := retryDelay(err, bo)
				var he *HandshakeError
				var se *wire.ServerError
				if errors.As(err, &he) || errors.As(err, &se) {
					log.Error("binance refused the connection", "error", err, "retry_in", wait.Round(time.Millisecond).String())
					r.note(ctx, connNote{shard: sh, ev: sdk.Event{Kind: sdk.EventServerError,
						Message: fmt.Sprintf("connection refused: %v; retrying in %v", err, wait.Round(time.Second))}})
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
				n.ev = sdk.Event{Kind: sdk.EventReconnect, Message: fmt.Sprintf("connection %d carries %d streams again", c.id, len(sh.streams))}
			}
			r.note(ctx, n)
			lost = false
		}
		rotate := time.NewTimer(time.Until(cur.opened.Add(r.base.rotateAfter)))
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
			r.note(ctx, connNote{shard: sh, down: true, ev: sdk.Event{Kind: sdk.EventDisconnect,
				Message: fmt.Sprintf("connection %d: %v", cur.id, cur.ended)}})
			cur, lost = nil, true
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
		case <-sh.kick:
			rotate.Stop()
			r.resubscribe(ctx, sh, cur, log)
		case <-rotate.C:
			cur = r.handover(ctx, sh, cur, bo, FeedRotate, fmt.Sprintf("connection reached rotate_after (%v)", r.base.rotateAfter))
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
	r.note(ctx, connNote{shard: sh, up: true, ev: sdk.Event{Kind: sdk.EventKind(kind),
		Message: fmt.Sprintf("connection %d replaced by %d: %s", old.id, n.id, why)}})
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
