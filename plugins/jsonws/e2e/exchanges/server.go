package exchanges

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Trade is one trade an exchange publishes: what a feed must store once,
// with these exact values.
type Trade struct {
	Symbol string    // as the exchange names it: BTC-USD, BTC/USD, tBTCUSD, btcusdt
	ID     string    // the exchange's trade id, as text
	Price  string    // decimal text, published digit for digit
	Qty    string    // decimal text, positive
	Side   string    // the taker's side: "buy" or "sell"
	Time   time.Time // at the precision the exchange publishes
}

// Options is what every fake exchange takes.
type Options struct {
	// Trades are published after each subscription, in order, grouped
	// by symbol as the exchange groups them: every connection that
	// subscribes gets them all again (a replay after a reconnect).
	Trades []Trade
	// Unit is what one second of the exchange's documented timing
	// becomes (its ping period, its deadlines): time.Second by default,
	// milliseconds in tests.
	Unit time.Duration
	// Drop is how many connections the exchange ends after publishing
	// the trades (as a restart would), so that the client reconnects and
	// receives them again.
	Drop int
}

func (o Options) unit() time.Duration {
	if o.Unit <= 0 {
		return time.Second
	}
	return o.Unit
}

// seconds is n seconds of the exchange's documented timing.
func (o Options) seconds(n float64) time.Duration { return time.Duration(n * float64(o.unit())) }

// Event is one thing that happened on a fake exchange, for tests.
type Event struct {
	Conn   int    // 1-based connection number
	Kind   string // see the Event kinds
	Detail string
}

// Event kinds.
const (
	EvConnect   = "connect"
	EvSubscribe = "subscribe" // a subscription acknowledged; Detail names it
	EvRefused   = "refused"   // a subscription refused; Detail says why
	EvPublished = "published" // every trade sent on the connection
	EvPing      = "ping"      // the client pinged (application level)
	EvPong      = "pong"      // the client answered the exchange's ping correctly
	EvHeartbeat = "heartbeat" // the exchange sent a heartbeat
	EvViolation = "violation" // the client broke a rule; the exchange disconnected it
	EvDropped   = "dropped"   // the exchange ended the connection (Options.Drop)
	EvClosed    = "closed"    // the connection ended
)

// server is the plumbing every fake exchange shares: it upgrades each
// request, runs the exchange's session on it, keeps the events, and on
// Close ends every connection and waits for their goroutines.
type server struct {
	name  string
	opts  Options
	serve func(c *conn)

	mu     sync.Mutex
	events []Event
	conns  int
	closed bool
	open   map[*websocket.Conn]bool
	wg     sync.WaitGroup
}

func newServer(name string, opts Options, serve func(c *conn)) *server {
	return &server{name: name, opts: opts, serve: serve, open: make(map[*websocket.Conn]bool)}
}

// Name is the exchange's name.
func (s *server) Name() string { return s.name }

// Events returns what happened so far.
func (s *server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Count is how many events of kind happened.
func (s *server) Count(kind string) int {
	n := 0
	for _, e := range s.Events() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Violations lists the rules clients broke, each as "conn N: rule".
func (s *server) Violations() []string {
	var out []string
	for _, e := range s.Events() {
		if e.Kind == EvViolation {
			out = append(out, fmt.Sprintf("conn %d: %s", e.Conn, e.Detail))
		}
	}
	return out
}

// Close ends every connection and waits for the sessions to return.
func (s *server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) record(conn int, kind, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, Event{Conn: conn, Kind: kind, Detail: detail})
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.conns++
	n := s.conns
	s.mu.Unlock()
	defer s.wg.Done()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.open[ws] = true
	s.mu.Unlock()
	c := &conn{srv: s, ws: ws, n: n, in: make(chan message, 64), done: make(chan struct{}), r: r}
	s.record(n, EvConnect, r.URL.Path)
	c.wg.Add(1)
	go c.read()
	s.serve(c)
	c.end()
	s.mu.Lock()
	delete(s.open, ws)
	s.mu.Unlock()
	s.record(n, EvClosed, "")
}

// message is one frame from the client.
type message struct {
	text bool
	data []byte
}

// conn is one client connection: reads arrive on in (closed when the
// client goes away); writes are serialised.
type conn struct {
	srv  *server
	ws   *websocket.Conn
	n    int
	r    *http.Request
	in   chan message
	done chan struct{} // closed by end
	wmu  sync.Mutex
	wg   sync.WaitGroup
	once sync.Once
}

func (c *conn) read() {
	defer c.wg.Done()
	defer close(c.in)
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		select {
		case c.in <- message{text: typ == websocket.TextMessage, data: b}:
		case <-c.done:
			return
		}
	}
}

// end closes the connection and waits for its reader.
func (c *conn) end() {
	c.once.Do(func() {
		close(c.done)
		c.ws.Close()
	})
	c.wg.Wait()
}

func (c *conn) record(kind, detail string) { c.srv.record(c.n, kind, detail) }

// send writes a text frame.
func (c *conn) send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// sendGzip writes a gzipped binary frame, as Huobi sends everything.
func (c *conn) sendGzip(s string) error {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b.Bytes())
}

// violation records a broken rule and disconnects the client, with the
// rule as the close reason, as exchanges do.
func (c *conn) violation(rule string) {
	c.record(EvViolation, rule)
	c.closeWith(websocket.CloseNormalClosure, rule)
}

// drop ends the connection as an exchange restart does.
func (c *conn) drop() {
	c.record(EvDropped, "")
	c.closeWith(websocket.CloseGoingAway, "server restart")
}

func (c *conn) closeWith(code int, reason string) {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	c.wmu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.wmu.Unlock()
	c.end()
}

// dropNow reports whether this connection is one Options.Drop ends after
// publishing.
func (c *conn) dropNow() bool { return c.n <= c.srv.opts.Drop }

// A clock is one of an exchange's own timers in a session: its ping
// period, a deadline. C is asked anew on every turn of the loop, so a
// clock may start late (nil: not running); Fire reports whether the
// session goes on.
type clock struct {
	C    func() <-chan time.Time
	Fire func() bool
}

// timer is a clock over t's channel.
func timer(t *time.Timer, fire func() bool) clock {
	return clock{C: func() <-chan time.Time { return t.C }, Fire: fire}
}

// ticker is a clock over t's channel.
func ticker(t *time.Ticker, fire func() bool) clock {
	return clock{C: func() <-chan time.Time { return t.C }, Fire: fire}
}

// loop is every exchange's session loop: it hands each client frame to
// frame and each tick of a clock to the clock, until one of them says
// the session is over or the client goes away. The exchange's protocol
// lives in frame and the clocks.
func (c *conn) loop(frame func(message) bool, clocks ...clock) {
	// A select over a number of clocks each exchange chooses.
	cases := make([]reflect.SelectCase, 1+len(clocks))
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.in)}
	for {
		for i, k := range clocks {
			cases[1+i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(k.C())}
		}
		i, v, ok := reflect.Select(cases)
		switch {
		case i == 0 && !ok:
			return
		case i == 0 && !frame(v.Interface().(message)):
			return
		case i > 0 && !clocks[i-1].Fire():
			return
		}
	}
}

// replay is the trades a connection publishes, grouped by symbol as the
// exchange groups them, and which symbols' trades it has published.
type replay struct {
	c       *conn
	symbols []string // in order of first trade
	groups  map[string][]Trade
	done    map[string]bool
}

func (c *conn) replay() *replay {
	r := &replay{c: c, groups: make(map[string][]Trade), done: make(map[string]bool)}
	for _, t := range c.srv.opts.Trades {
		if _, ok := r.groups[t.Symbol]; !ok {
			r.symbols = append(r.symbols, t.Symbol)
		}
		r.groups[t.Symbol] = append(r.groups[t.Symbol], t)
	}
	return r
}

// take returns symbol's trades and counts them published.
func (r *replay) take(symbol string) []Trade {
	r.done[symbol] = true
	return r.groups[symbol]
}

// complete reports, once every symbol's trades are published, that they
// are (EvPublished) and whether Options.Drop ends this connection now.
func (r *replay) complete() (drop bool) {
	if len(r.done) < len(r.symbols) {
		return false
	}
	r.c.record(EvPublished, "")
	return r.c.dropNow()
}

// known reports whether the exchange lists symbol: it lists the symbols
// of its trades.
func (s *server) known(symbol string) bool {
	return slices.ContainsFunc(s.opts.Trades, func(t Trade) bool { return t.Symbol == symbol })
}
