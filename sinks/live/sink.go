package live

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/capread"
	"github.com/sluicehq/sluice/sinks"
)

// maxKeyFile caps token_public_key_file and token_jwks_file.
const maxKeyFile = capread.PEM

// closeTimeout bounds Close: clients are told the server shuts down, the
// listener stops, the broker disconnects.
const closeTimeout = 5 * time.Second

// maxSample bounds RejectedError.Sample.
const maxSample = 512

// Sink publishes each point to the channel its template names, for the
// clients subscribed there (see doc.go).
//
// Lifecycle: New only stores the config; Open reads the key files,
// starts the centrifuge node and the listener; Declare and Write may
// then be called by one goroutine at a time; Close disconnects every
// client, stops the listener and the node, and is idempotent. Stats and
// Health may be called from any goroutine at any time.
//
// With Redis, Open tries it once; if it does not answer, the node starts
// when it does (keepRedis), and until then the listener serves the page
// and answers clients 503. While Redis does not answer, Write skips the
// points (counted) instead of failing: see Write.
type Sink struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex // Open, Declare, Write, Close
	opened     bool
	closed     bool
	running    atomic.Pointer[centrifuge.Node] // the node serving, once one runs
	transports atomic.Pointer[transports]      // its client protocol handlers
	srv        *http.Server
	addr       net.Addr
	serveWG    sync.WaitGroup // the listener
	loopWG     sync.WaitGroup // the rates sampler, the Redis keeper
	stopLoop   context.CancelFunc

	redis   *redisLink // nil without Redis
	rmu     sync.Mutex // rnode, rclosed: the keeper installs the node
	rnode   *redisNode
	rclosed bool
	router  *router
	latest  map[string]bool // measurements that keep their latest point only
	keys    sinks.Keys      // declared uniqueness keys, for idempotency keys with Redis

	conns connSet // every open connection: the server's Shutdown does not close WebSockets

	auth  *verifier
	anon  *grant // what a client without a token may do; nil: nothing
	chans *channelTable
	st    stats
}

// New returns a live sink for cfg (from DefaultConfig, then the sink's
// section). It has no side effects.
func New(cfg Config, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	latest := make(map[string]bool, len(cfg.LatestOnly))
	for _, m := range cfg.LatestOnly {
		latest[strings.TrimSpace(m)] = true
	}
	return &Sink{
		cfg: cfg, log: log.With("sink_type", "live"), now: time.Now,
		latest: latest,
		chans:  newChannelTable(maxTrackedChannels),
	}
}

// Addr is the address the live endpoint listens on, once open.
func (s *Sink) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Open checks the config, reads the key files, starts the node and the
// listener. A Redis server that does not answer is not an error: the
// sink serves once it does (see Sink).
func (s *Sink) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("live sink: closed")
	case s.opened:
		return errors.New("live sink: already open")
	}
	if errs := s.cfg.problems(); len(errs) > 0 {
		return fmt.Errorf("live sink: %w", errors.Join(errs...))
	}
	s.router, _ = newRouter(s.cfg.Channel, s.cfg.Channels)
	if err := s.loadKeys(); err != nil {
		return err
	}
	if len(s.cfg.AnonymousChannels) > 0 {
		s.anon = &grant{channels: s.cfg.AnonymousChannels}
	}

	var (
		node *centrifuge.Node
		stop func() // stops node if what follows fails
	)
	if s.cfg.Redis.Address == "" {
		var err error
		if node, err = s.newNode(); err != nil {
			return err
		}
		if err := node.Run(); err != nil {
			return fmt.Errorf("live sink: start: %w", err)
		}
		stop = func() { shutdown(node) }
	} else {
		s.redis = newRedisLink(s.cfg.Redis.Address, s.now())
		rn, err := s.startRedisNode()
		if err != nil {
			s.redis.lost(s.now(), err)
			s.log.Warn("live: Redis does not answer; serving once it does, points are skipped until then",
				"redis", s.cfg.Redis.Address, "error", err)
			stop = func() {}
		} else {
			s.redis.found()
			s.rnode, node = rn, rn.node
			stop = func() {
				ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
				defer cancel()
				_ = rn.close(ctx)
			}
		}
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		stop()
		return fmt.Errorf("live sink: listen: %w", err)
	}
	s.addr = ln.Addr()
	if node != nil {
		s.serve(node)
	}
	s.srv = &http.Server{Handler: s.mux(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.serveWG.Go(func() {
		if err := s.srv.Serve(&trackingListener{Listener: ln, set: &s.conns}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("live: listener stopped", "error", err)
		}
	})
	loopCtx, stopLoop := context.WithCancel(context.Background())
	s.stopLoop = stopLoop
	s.loopWG.Go(func() { s.st.sampleRates(loopCtx, s.now) })
	if s.redis != nil {
		s.loopWG.Go(func() { s.keepRedis(loopCtx) })
	}
	s.opened = true
	s.log.Info("live: serving", "listen", s.addr.String(), "redis", s.cfg.Redis.Address != "",
		"anonymous", len(s.cfg.AnonymousChannels) > 0, "page", "http://"+s.addr.String()+"/")
	return nil
}

// newNode builds a node with the sink's limits and handlers; it has no
// broker yet (the in-memory one unless SetBroker).
func (s *Sink) newNode() (*centrifuge.Node, error) {
	node, err := centrifuge.New(centrifuge.Config{
		Name:                        nodeName(s.cfg.Listen),
		LogLevel:                    centrifuge.LogLevelInfo,
		LogHandler:                  s.logEntry,
		ClientQueueMaxSize:          s.cfg.ClientQueueBytes,
		ClientChannelLimit:          s.cfg.ClientChannelLimit,
		ChannelMaxLength:            MaxChannel,
		HistoryMaxPublicationLimit:  s.cfg.HistorySize,
		RecoveryMaxPublicationLimit: s.cfg.HistorySize,
		// The node's own metrics stay in the node: the agent exports the
		// sink's stats (Stats), and a process-wide registry would clash
		// between two sinks.
		Metrics: centrifuge.MetricsConfig{RegistererGatherer: prometheus.NewRegistry()},
	})
	if err != nil {
		return nil, fmt.Errorf("live sink: %w", err)
	}
	s.handle(node)
	return node, nil
}

// serve makes a running node the one that publishes and takes clients.
func (s *Sink) serve(node *centrifuge.Node) {
	s.running.Store(node)
	s.transports.Store(s.transportsOf(node))
}

// Health is nil unless the sink has Redis and Redis does not answer:
// then it says since when and why (sinks.HealthReporter).
func (s *Sink) Health() error {
	if s.redis == nil {
		return nil
	}
	return s.redis.health()
}

// loadKeys reads the public key and JWKS files and builds the verifier.
func (s *Sink) loadKeys() error {
	var (
		public []crypto.PublicKey
		jwks   map[string]jwt.VerificationKey
	)
	if f := s.cfg.TokenPublicKeyFile; f != "" {
		b, err := capread.File(f, maxKeyFile, "a public key file")
		if err == nil {
			public, err = parsePublicKeys(b)
		}
		if err != nil {
			return &sinks.FailedError{Err: fmt.Errorf("live sink: token_public_key_file %s: %w", f, err)}
		}
	}
	if f := s.cfg.TokenJWKSFile; f != "" {
		b, err := capread.File(f, maxKeyFile, "a JWKS file")
		if err == nil {
			jwks, err = parseJWKS(b)
		}
		if err != nil {
			return &sinks.FailedError{Err: fmt.Errorf("live sink: token_jwks_file %s: %w", f, err)}
		}
	}
	s.auth = newVerifier(s.cfg.TokenHMACSecret, public, jwks, s.cfg.TokenAudience, s.cfg.TokenIssuer, s.now)
	return nil
}

// nodeName names this node among those sharing a broker: the host and
// the port it listens on.
func nodeName(listen string) string {
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(listen)
	return host + ":" + port
}

// logEntry passes the node's log to the sink's logger.
func (s *Sink) logEntry(e centrifuge.LogEntry) {
	level := slog.LevelDebug
	switch e.Level {
	case centrifuge.LogLevelInfo:
		level = slog.LevelInfo
	case centrifuge.LogLevelWarn:
		level = slog.LevelWarn
	case centrifuge.LogLevelError:
		level = slog.LevelError
	}
	if level > slog.LevelInfo && s.redis != nil && !s.redis.isUp() {
		// The node retries its Redis connections every 250ms, logging
		// each failure; the keeper has said once that Redis is down.
		level = slog.LevelDebug
	}
	attrs := make([]any, 0, 2*len(e.Fields)+2)
	for _, k := range sortedKeys(e.Fields) {
		attrs = append(attrs, k, e.Fields[k])
	}
	if e.Error != nil {
		attrs = append(attrs, "error", e.Error)
	}
	s.log.Log(context.Background(), level, "live: "+e.Message, attrs...)
}

// Declare records each measurement's uniqueness key: with Redis, a
// point's idempotency key is made from it.
func (s *Sink) Declare(_ context.Context, ms []sluice.Measurement) error {
	s.mu.Lock() // s.keys is Write's too
	defer s.mu.Unlock()
	s.keys.Declare(ms)
	return nil
}

// publication is one point ready to publish.
type publication struct {
	channel string
	data    []byte
	opts    []centrifuge.PublishOption
}

// Write publishes every point to its channel and returns once each is in
// the channel's history and handed to its subscribers' queues: in memory,
// or with Redis in Redis. A subscriber's queue never makes Write wait:
// a client whose queue is full is disconnected.
//
// With Redis, a point is published once within redis.dedup_window
// however often it is sent (by its uniqueness key). While Redis does not
// answer, Write skips the points at once; when a publish fails, the rest
// of the batch is skipped: live data that arrives late is not live, and
// retrying would hold the sink's buffer. Health says Redis is down
// meanwhile.
//
// Errors:
//
//   - *sinks.SkippedError: points skipped because Redis did not answer
//     (also counted in live_skipped_total); every other point is
//     published, or rejected: then Err wraps the *sinks.RejectedError.
//   - *sinks.RejectedError: points whose channel name would be too long;
//     every other point is published.
//   - any other error (in memory, which does not fail; or ctx ended):
//     the pipeline retries the batch.
func (s *Sink) Write(ctx context.Context, points []sluice.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("live sink: closed")
	case !s.opened:
		return errors.New("live sink: not open")
	}
	node := s.running.Load()
	if s.redis != nil && (node == nil || !s.redis.isUp()) {
		return s.skip(len(points), nil, nil)
	}
	var (
		rej  rejections
		pubs = make([]publication, 0, len(points))
		name []byte
		now  = s.now()
	)
	for i := range points {
		p := &points[i]
		var err error
		name, err = s.router.template(p.Measurement).render(name[:0], p)
		if err != nil {
			rej.add(p, err)
			continue
		}
		latest := s.latest[p.Measurement]
		ch := s.chans.note(string(name), p, latest, now)
		size := s.cfg.HistorySize
		if latest {
			size = 1
		}
		opts := []centrifuge.PublishOption{centrifuge.WithHistory(size, s.cfg.HistoryTTL)}
		if s.cfg.Redis.Address != "" {
			if key := idempotencyKey(p, s.keys.Of(p.Measurement)); key != "" {
				opts = append(opts, centrifuge.WithIdempotencyKey(key), centrifuge.WithIdempotentResultTTL(s.cfg.Redis.DedupWindow))
			}
		}
		// Each publication keeps its own bytes: the history holds them.
		pubs = append(pubs, publication{channel: ch, data: appendPayload(make([]byte, 0, 256), p), opts: opts})
	}
	skipped, cause, err := s.publish(ctx, node, pubs)
	if err != nil {
		return fmt.Errorf("live sink: publish: %w", err)
	}
	var rejected error
	if rej.n > 0 {
		s.st.rejected.Add(uint64(rej.n))
		rejected = &sinks.RejectedError{Rejected: rej.n, Sample: rej.sample,
			Err: fmt.Errorf("live sink: %d of %d points cannot be published, first: %s", rej.n, len(points), rej.reason)}
	}
	if skipped > 0 {
		return s.skip(skipped, cause, rejected)
	}
	return rejected
}

// skip counts n points skipped because Redis does not answer and returns
// the *sinks.SkippedError that says so; cause is the publish that failed,
// nil when Redis was already known to be down. rejected, if not nil, is
// the rejection of other points of the batch.
func (s *Sink) skip(n int, cause, rejected error) error {
	s.redis.skipped.Add(uint64(n))
	var err error
	if cause != nil {
		err = fmt.Errorf("live sink: publish: %w", cause)
	} else if down := s.redis.health(); down != nil {
		err = fmt.Errorf("live sink: %w", down)
	} else { // back meanwhile
		err = errors.New("live sink: not connected to Redis at " + s.cfg.Redis.Address)
	}
	if rejected != nil {
		err = fmt.Errorf("%w; %w", err, rejected)
	}
	return &sinks.SkippedError{Skipped: n, Err: err}
}

// publishers bounds the publications in flight at once with Redis: each
// channel's in order, channels side by side, so that the round trips to
// Redis overlap.
const publishers = 16

// publish publishes pubs on node. With Redis, a publish that fails skips
// the rest of its channel, and Redis then counts as down, which skips the
// rest of the other channels too: skipped is how many were not published,
// cause the first failure (nil when the keeper found Redis down first).
// err is ctx's only: the batch is then retried.
func (s *Sink) publish(ctx context.Context, node *centrifuge.Node, pubs []publication) (skipped int, cause, err error) {
	if s.redis == nil {
		// In memory: nothing to overlap, nothing to fail.
		for i := range pubs {
			if err := s.publishOne(node, &pubs[i]); err != nil {
				return 0, nil, err
			}
		}
		return 0, nil, nil
	}
	byChannel := make(map[string][]int)
	var order []string
	for i := range pubs {
		ch := pubs[i].channel
		if _, ok := byChannel[ch]; !ok {
			order = append(order, ch)
		}
		byChannel[ch] = append(byChannel[ch], i)
	}
	work := make(chan string)
	var (
		wg     sync.WaitGroup
		done   atomic.Int64 // publications handled: published or duplicates
		failMu sync.Mutex
		failed error // the first publish that failed
	)
	for range min(publishers, len(order)) {
		wg.Go(func() {
			for ch := range work {
				for _, i := range byChannel[ch] {
					if !s.redis.isUp() {
						break
					}
					if err := s.publishOne(node, &pubs[i]); err != nil {
						if s.redis.lost(s.now(), err) {
							s.log.Warn("live: Redis does not answer; points are skipped until it does", "redis", s.cfg.Redis.Address, "error", err)
						}
						failMu.Lock()
						if failed == nil {
							failed = err
						}
						failMu.Unlock()
						break // the rest of the channel is skipped, not sent out of order
					}
					done.Add(1)
				}
			}
		})
	}
	for _, ch := range order {
		select {
		case work <- ch:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	return len(pubs) - int(done.Load()), failed, nil
}

func (s *Sink) publishOne(node *centrifuge.Node, p *publication) error {
	res, err := node.Publish(p.channel, p.data, p.opts...)
	if err != nil {
		return fmt.Errorf("channel %s: %w", p.channel, err)
	}
	if res.Suppressed {
		s.st.suppressed.Add(1)
		return nil
	}
	s.st.published.Add(1)
	s.st.publishedBytes.Add(uint64(len(p.data)))
	return nil
}

// idempotencyKey is p's identity under its uniqueness key: the
// measurement and the key's values, "" when p has none.
func idempotencyKey(p *sluice.Point, unique []string) string {
	if len(unique) == 0 {
		return ""
	}
	b := appendEscaped(nil, p.Measurement)
	for _, name := range unique {
		b = append(b, ':')
		if v, ok := p.Tag(name); ok {
			b = appendEscaped(b, v)
			continue
		}
		if f, ok := p.Field(name); ok {
			b = appendEscaped(b, string(appendValue(nil, f)))
			continue
		}
		if name == "time" {
			b = appendEscaped(b, p.Time.UTC().Format(time.RFC3339Nano))
			continue
		}
		return ""
	}
	return string(b)
}

// rejections counts the points of a batch that cannot be published.
type rejections struct {
	n      int
	sample string
	reason string
}

func (r *rejections) add(p *sluice.Point, err error) {
	if r.n == 0 {
		r.reason = err.Error()
		r.sample = string(appendPayload(nil, p))
		if len(r.sample) > maxSample {
			r.sample = r.sample[:maxSample] + "..."
		}
	}
	r.n++
}

// Close disconnects every client (code 3001, shutdown: the SDKs
// reconnect), stops the listener and the node. It is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.opened {
		return nil
	}
	// The keeper first, so that it starts no node from now on.
	s.rmu.Lock()
	s.rclosed = true
	s.rmu.Unlock()
	s.stopLoop()
	s.loopWG.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// The node first: it disconnects every client, which ends their
	// handlers (a stream handler would hold the server's Shutdown).
	var nodeErr error
	if s.rnode != nil {
		nodeErr = s.rnode.close(ctx)
	} else if node := s.running.Load(); node != nil {
		nodeErr = node.Shutdown(ctx)
	}
	srvErr := s.srv.Shutdown(ctx)
	if srvErr != nil {
		srvErr = s.srv.Close()
	}
	// A connection that never authenticated is not the node's to close.
	s.conns.closeAll()
	s.serveWG.Wait()
	if err := errors.Join(nodeErr, srvErr); err != nil {
		return fmt.Errorf("live sink: close: %w", err)
	}
	return nil
}

// connSet holds the open connections of a listener, so that Close can
// end those the HTTP server handed over (the WebSockets).
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]bool
}

func (c *connSet) add(conn *trackedConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		c.conns = make(map[*trackedConn]bool)
	}
	c.conns[conn] = true
}

func (c *connSet) remove(conn *trackedConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.conns, conn)
}

func (c *connSet) closeAll() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for conn := range conns {
		conn.Conn.Close()
	}
}

// trackingListener adds each connection it accepts to a set, which the
// connection leaves when it is closed.
type trackingListener struct {
	net.Listener
	set *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	l.set.add(tc)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}

// shutdown stops a node that never served.
func shutdown(node *centrifuge.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = node.Shutdown(ctx)
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.StatsReporter  = (*Sink)(nil)
	_ sinks.HealthReporter = (*Sink)(nil)
)
