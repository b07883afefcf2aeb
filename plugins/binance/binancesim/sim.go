package binancesim

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Sim is a simulated Binance: an http.Handler serving the WebSocket
// market streams and the REST market-data endpoints of spot, USD-M and
// COIN-M under the prefixes /spot, /usdm and /coinm (see the package
// documentation for the layout).
//
// Lifecycle: New builds the markets and does nothing else. Run drives the
// virtual clock in real time until its context ends (with
// Options.Manual it only waits, and the caller moves the clock with
// Advance). Serve it with httptest.NewServer or any http.Server. Close
// ends every connection and waits for the goroutines the Sim started; it
// is idempotent. Start does all of this for a test.
type Sim struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	markets map[market.Market]*venue
	order   []*venue
	started bool
	nowUs   int64 // virtual clock, unix microseconds
	conns   map[uint64]*conn
	nextID  uint64
	closed  bool
	refuse  refusal
	weights map[weightKey]*weightWindow
	faults  *rand.Rand

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // connection goroutines and fault timers

	replayPos atomic.Int64 // furthest replay frame any connection reached
	st        counters
}

// refusal is a pending RefuseHandshakes.
type refusal struct {
	n          int
	status     int
	retryAfter time.Duration
}

// New returns a simulator for opts. It starts nothing.
func New(opts Options) *Sim {
	s := &Sim{
		opts:    opts,
		log:     opts.Logger,
		markets: map[market.Market]*venue{},
		conns:   map[uint64]*conn{},
		weights: map[weightKey]*weightWindow{},
		faults:  rand.New(rand.NewPCG(opts.seed(), 0xfa17)),
		done:    make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for i, m := range opts.markets() {
		if _, dup := s.markets[m]; dup {
			continue
		}
		rng := rand.New(rand.NewPCG(opts.seed(), uint64(i+1)*0x9e3779b97f4a7c15))
		var names []string
		for _, n := range opts.symbols(m) {
			names = append(names, strings.ToUpper(n))
		}
		if opts.Replay != nil && opts.Replay.Market == m {
			names = nil // the recording is this market's data
		}
		mk := newMarket(s, m, names, rng)
		if opts.Replay != nil && opts.Replay.Market == m {
			mk.replay = opts.Replay
		}
		s.markets[m] = mk
		s.order = append(s.order, mk)
	}
	if r := opts.Replay; r != nil && s.markets[r.Market] == nil {
		mk := newMarket(s, r.Market, nil, rand.New(rand.NewPCG(opts.seed(), 99)))
		mk.replay = r
		s.markets[r.Market] = mk
		s.order = append(s.order, mk)
	}
	return s
}

// startLocked fixes the epoch on first use.
func (s *Sim) startLocked() {
	if s.started {
		return
	}
	s.started = true
	epoch := s.opts.Epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	s.nowUs = epoch.UnixMicro()
	for _, mk := range s.order {
		mk.start(s.nowUs)
	}
}

// Run moves the virtual clock with the wall clock, every Options.Tick,
// until ctx ends or the Sim is closed. With Options.Manual it only waits.
func (s *Sim) Run(ctx context.Context) error {
	s.mu.Lock()
	s.startLocked()
	base, wall := s.nowUs, time.Now()
	s.mu.Unlock()
	if s.opts.Manual {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		return nil
	}
	tick := time.NewTicker(s.opts.tick())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-tick.C:
			s.mu.Lock()
			s.advanceLocked(base + time.Since(wall).Microseconds())
			s.mu.Unlock()
		}
	}
}

// Advance moves the virtual clock by d, generating what the markets do in
// that time. Use it with Options.Manual; mixed with Run, the two clocks
// fight.
func (s *Sim) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	s.advanceLocked(s.nowUs + d.Microseconds())
}

func (s *Sim) advanceLocked(toUs int64) {
	if toUs <= s.nowUs {
		return
	}
	for _, mk := range s.order {
		mk.advance(toUs)
	}
	s.nowUs = toUs
}

// Now returns the virtual clock: the time of the newest generated event.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.UnixMicro(s.nowUs)
}

// Close drops every connection and waits for the Sim's goroutines.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		conns := s.connsLocked()
		s.mu.Unlock()
		for _, c := range conns {
			c.drop(Abrupt)
		}
	})
	s.wg.Wait()
	return nil
}

// ServeHTTP routes /<market>/ws, /<market>/stream and the market's REST
// paths.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	m, err := market.ParseMarket(prefix)
	mk := s.markets[m]
	if err != nil || mk == nil {
		http.Error(w, "Invalid request path", http.StatusNotFound)
		return
	}
	rest = "/" + rest
	switch {
	case rest == "/ws" || strings.HasPrefix(rest, "/ws/"):
		var streams []string
		if p := strings.TrimPrefix(strings.TrimPrefix(rest, "/ws"), "/"); p != "" {
			streams = strings.Split(p, "/")
		}
		s.serveWS(w, r, mk, streams, false)
	case rest == "/stream":
		var streams []string
		if q := r.URL.Query().Get("streams"); q != "" {
			streams = strings.Split(q, "/")
		}
		s.serveWS(w, r, mk, streams, true)
	default:
		s.serveREST(w, r, mk, rest)
	}
}

// Server is a Sim listening on a loopback httptest server.
type Server struct {
	*Sim
	HTTP *httptest.Server
}

// Start runs a Sim for a test: Run in the background (unless
// opts.Manual) and an httptest server, all stopped by t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	sim := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = sim.Run(ctx)
	}()
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		_ = sim.Close()
		srv.Close()
		cancel()
		<-ran
	})
	return &Server{Sim: sim, HTTP: srv}
}

// WSURL is the WebSocket base URL of a market: append /ws/<stream> or
// /stream?streams=... as on Binance.
func (s *Server) WSURL(m market.Market) string {
	return "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/" + m.String()
}

// RESTURL is the REST base URL of a market: append /api/v3/...,
// /fapi/v1/... or /dapi/v1/... as on Binance.
func (s *Server) RESTURL(m market.Market) string {
	return s.HTTP.URL + "/" + m.String()
}

// URLs returns the WebSocket and REST base URLs of a market served at
// base (http://host:port).
func URLs(base string, m market.Market) (ws, rest string) {
	base = strings.TrimSuffix(base, "/")
	return "ws" + strings.TrimPrefix(base, "http") + "/" + m.String(), base + "/" + m.String()
}

// Trade is one generated trade, as the trade stream sent it.
type Trade struct {
	ID         int64
	Price, Qty string
	Time       time.Time
	BuyerMaker bool
}

// AggTrade is one generated aggregate trade.
type AggTrade struct {
	ID, FirstTradeID, LastTradeID int64
	Price, Qty                    string
	Time                          time.Time
	BuyerMaker                    bool
}

func (s *Sim) symbol(m market.Market, symbol string) (*venue, *symbol) {
	mk := s.markets[m]
	if mk == nil {
		return nil, nil
	}
	return mk, mk.by[strings.ToUpper(symbol)]
}

// Trades returns the trades of a symbol still in the history (the last
// Options.HistoryCap), oldest first: the ground truth a client's trades
// are checked against.
func (s *Sim) Trades(m market.Market, symbol string) []Trade {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk, sym := s.symbol(m, symbol)
	if sym == nil {
		return nil
	}
	out := make([]Trade, sym.trades.len())
	for i := range out {
		t := sym.trades.at(i)
		out[i] = Trade{ID: t.id, Time: time.UnixMilli(t.ms).UTC(), BuyerMaker: t.buyerMaker,
			Price: string(appendFixed(nil, t.price, sym.pd, mk.priceOut(sym))),
			Qty:   string(appendFixed(nil, t.qty, sym.qd, mk.qtyOut(sym)))}
	}
	return out
}

// TradeCount returns how many trades a symbol has generated, including
// those the history no longer holds. Trade ids are contiguous, so the ids
// ever generated are the last TradeCount ids up to the newest.
func (s *Sim) TradeCount(m market.Market, symbol string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, sym := s.symbol(m, symbol)
	if sym == nil {
		return 0
	}
	return sym.nextTrade - sym.tradeBase
}

// AggTrades returns the aggregate trades of a symbol still in the history,
// oldest first.
func (s *Sim) AggTrades(m market.Market, symbol string) []AggTrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk, sym := s.symbol(m, symbol)
	if sym == nil {
		return nil
	}
	out := make([]AggTrade, sym.aggs.len())
	for i := range out {
		a := sym.aggs.at(i)
		out[i] = AggTrade{ID: a.id, FirstTradeID: a.first, LastTradeID: a.last,
			Time: time.UnixMilli(a.ms).UTC(), BuyerMaker: a.buyerMaker,
			Price: string(appendFixed(nil, a.price, sym.pd, mk.priceOut(sym))),
			Qty:   string(appendFixed(nil, a.qty, sym.qd, mk.qtyOut(sym)))}
	}
	return out
}

// Symbols returns the generated symbols of a market.
func (s *Sim) Symbols(m market.Market) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk := s.markets[m]
	if mk == nil {
		return nil
	}
	out := make([]string, len(mk.syms))
	for i, sym := range mk.syms {
		out[i] = sym.name
	}
	return out
}

// counters back Stats.
type counters struct {
	handshakes, refused, accepted, open                       atomic.Int64
	dropped, rateLimited, pongTimeouts, expired, slow, closed atomic.Int64
	requests, frames, rest, rest429, rest418                  atomic.Int64
}

// Stats counts what happened to connections and requests since New.
type Stats struct {
	Handshakes int64 // WebSocket upgrade requests, refused ones included
	Refused    int64 // handshakes answered with an HTTP error
	Accepted   int64 // connections opened
	Open       int64 // connections open now
	Closed     int64 // connections ended, for any reason

	Dropped      int64 // by a fault method (Drop*, ServerShutdown close)
	RateLimited  int64 // closed for more than MaxIncoming messages a second
	PongTimeouts int64 // closed for not answering pings
	Expired      int64 // closed at MaxLifetime or by ExpireConns
	SlowConsumer int64 // closed because the send queue filled

	Requests int64 // SUBSCRIBE and other JSON requests received
	Frames   int64 // text frames written
	REST     int64 // REST requests
	REST429  int64 // answered 429
	REST418  int64 // answered 418
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	c := &s.st
	return Stats{
		Handshakes: c.handshakes.Load(), Refused: c.refused.Load(),
		Accepted: c.accepted.Load(), Open: c.open.Load(), Closed: c.closed.Load(),
		Dropped: c.dropped.Load(), RateLimited: c.rateLimited.Load(),
		PongTimeouts: c.pongTimeouts.Load(), Expired: c.expired.Load(),
		SlowConsumer: c.slow.Load(), Requests: c.requests.Load(),
		Frames: c.frames.Load(), REST: c.rest.Load(),
		REST429: c.rest429.Load(), REST418: c.rest418.Load(),
	}
}

// ConnInfo describes one open connection.
type ConnInfo struct {
	ID       uint64
	Market   market.Market
	Combined bool
	Streams  []string
	Opened   time.Time
}

// Conns lists the open connections, oldest first.
func (s *Sim) Conns() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ConnInfo
	for _, c := range s.connsLocked() {
		out = append(out, ConnInfo{ID: c.id, Market: c.mk.m, Combined: c.combined.Load(),
			Streams: append([]string(nil), c.order...), Opened: c.opened})
	}
	return out
}

// Activity counts what a market's generator has produced since it
// started, whether or not anyone is subscribed: the mix a load test
// reports next to what its client received.
type Activity struct {
	Events      int64 // engine events (update ids): orders, cancels, takers
	Trades      int64
	BookTickers int64 // changes of the best bid or ask: the bookTicker frames
	DepthEvents int64 // diff-depth events of the fastest speed (100ms)
	DepthLevels int64 // price levels those events carry, both sides
}

// Activity returns the counts of market m.
func (s *Sim) Activity(m market.Market) Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mk := s.markets[m]; mk != nil {
		return mk.act
	}
	return Activity{}
}

// UpdateIDs returns, in the order of Symbols, the update id each symbol's
// book is at: a bookTicker or diff-depth frame with an id up to it has
// been generated.
func (s *Sim) UpdateIDs(m market.Market) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk := s.markets[m]
	if mk == nil {
		return nil
	}
	out := make([]int64, len(mk.syms))
	for i, sym := range mk.syms {
		out[i] = sym.lastID
	}
	return out
}

// SetTradeRate changes market m's trade rate (Options.TradeRate) from the
// next engine event on, so a load test can step its load without
// restarting its client.
func (s *Sim) SetTradeRate(m market.Market, rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mk := s.markets[m]; mk != nil && rate > 0 {
		mk.setTradeRate(rate)
	}
}
