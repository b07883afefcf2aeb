package binancesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

const (
	writeWait    = 10 * time.Second // bound on one frame write
	closeWait    = 2 * time.Second  // how long a close frame waits for the reply
	maxReadBytes = 1 << 16
	maxPings     = 16 // outstanding ping payloads remembered
)

var upgrader = websocket.Upgrader{
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  4096,
	WriteBufferSize: 16384,
}

// conn is one WebSocket client. Its streams are guarded by Sim.mu; the
// rest is its own.
type conn struct {
	id       uint64
	sim      *Sim
	mk       *venue
	wsp      atomic.Pointer[websocket.Conn] // for drop: nil until the handshake is done
	ws       *websocket.Conn                // for the conn's goroutines, which start after it is set
	opened   time.Time
	combined atomic.Bool

	streams map[string]struct{} // guarded by Sim.mu
	order   []string            // subscription order, for LIST_SUBSCRIPTIONS

	out        chan outFrame
	done       chan struct{} // closed when the connection starts ending
	how        Close         // how it ends; written before done is closed
	dropOnce   sync.Once
	finishOnce sync.Once
	wg         sync.WaitGroup // writer and keeper

	pmu        sync.Mutex
	pings      []string  // payloads of unanswered pings, oldest first
	unanswered time.Time // when the oldest unanswered ping went out

	incoming []time.Time // reader only: times of the last MaxIncoming messages
}

// outFrame is a queued frame, or a close to perform once the frames
// queued before it are written.
type outFrame struct {
	b     []byte
	close *Close
}

// serveWS upgrades one connection. streams come from the URL: /ws/<a>/<b>
// (raw) or /stream?streams=<a>/<b> (combined).
func (s *Sim) serveWS(w http.ResponseWriter, r *http.Request, mk *venue, streams []string, combined bool) {
	s.st.handshakes.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.st.refused.Add(1)
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	if s.refuse.n > 0 {
		rf := s.refuse
		s.refuse.n--
		s.mu.Unlock()
		s.st.refused.Add(1)
		if rf.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((rf.retryAfter+time.Second-1)/time.Second)))
		}
		writeJSONError(w, rf.status, -1003, http.StatusText(rf.status))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	streams = slices.Compact(streams)
	for _, name := range streams {
		if !mk.validStream(name) {
			s.st.refused.Add(1)
			http.Error(w, "Invalid request: invalid stream "+strconv.Quote(name), http.StatusBadRequest)
			return
		}
	}
	if len(streams) > mk.lim.maxStreams {
		s.st.refused.Add(1)
		http.Error(w, "Too many subscriptions", http.StatusBadRequest)
		return
	}
	// Subscribe before the handshake completes, so that a client that has
	// its 101 is already getting frames; they wait in the queue.
	c := &conn{
		sim:     s,
		mk:      mk,
		opened:  time.Now(),
		streams: map[string]struct{}{},
		out:     make(chan outFrame, mk.lim.sendQueue),
		done:    make(chan struct{}),
	}
	c.combined.Store(combined)
	s.mu.Lock()
	s.startLocked()
	s.nextID++
	c.id = s.nextID
	s.conns[c.id] = c
	for _, name := range streams {
		c.addStream(name)
	}
	s.mu.Unlock()
	unsubscribe := func() {
		s.mu.Lock()
		for name := range c.streams {
			mk.unsubscribe(c, name)
		}
		delete(s.conns, c.id)
		s.mu.Unlock()
	}
	// Counted before the 101 goes out, so a client never sees its
	// connection missing from Stats.
	s.st.accepted.Add(1)
	s.st.open.Add(1)
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.st.accepted.Add(-1)
		s.st.open.Add(-1)
		s.st.refused.Add(1)
		unsubscribe()
		return // Upgrade has answered
	}
	c.wsp.Store(ws)
	c.ws = ws
	s.log.Debug("binancesim: connection opened", "market", mk.m.String(), "conn", c.id, "streams", len(streams))

	c.wg.Add(2)
	go c.writer()
	go c.keeper()
	if mk.replay != nil {
		c.wg.Add(1)
		go c.replay(mk.replay, s.opts.ReplaySpeed)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		c.drop(Abrupt)
	}
	select {
	case <-c.done: // dropped while the handshake went on
		c.finish(ws)
	default:
	}
	c.reader()

	c.drop(Abrupt)
	c.wg.Wait()
	ws.NetConn().Close()
	unsubscribe()
	s.st.open.Add(-1)
	s.st.closed.Add(1)
	s.log.Debug("binancesim: connection closed", "market", mk.m.String(), "conn", c.id)
}

// addStream subscribes c to one more stream. Sim.mu is held.
func (c *conn) addStream(name string) {
	if _, ok := c.streams[name]; ok {
		return
	}
	c.streams[name] = struct{}{}
	c.order = append(c.order, name)
	c.mk.subscribe(c, name, c.sim.nowUs/1000)
}

func (c *conn) removeStream(name string) {
	if _, ok := c.streams[name]; !ok {
		return
	}
	delete(c.streams, name)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == name })
	c.mk.unsubscribe(c, name)
}

func (s *Sim) connsLocked() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *conn) int { return int(a.id) - int(b.id) })
	return out
}

// send queues a frame without blocking: a client that lets the queue fill
// is dropped, as Binance drops consumers that cannot keep up.
func (c *conn) send(f []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.out <- outFrame{b: f}:
	default:
		c.sim.st.slow.Add(1)
		c.drop(Abrupt)
	}
}

// closeAfterQueued closes the connection once the frames queued so far
// are written: an error answer, then the close.
func (c *conn) closeAfterQueued(how Close) {
	select {
	case c.out <- outFrame{close: &how}:
	case <-c.done:
	default:
		c.drop(how)
	}
}

// drop ends the connection once: abruptly (TCP close, no close frame) or
// with a close frame, after which the reader waits briefly for the reply.
func (c *conn) drop(how Close) {
	c.dropOnce.Do(func() {
		c.how = how
		close(c.done)
		if ws := c.wsp.Load(); ws != nil {
			c.finish(ws)
		}
		// Otherwise serveWS finishes once the handshake is done.
	})
}

// finish carries out a drop on the upgraded connection, once.
func (c *conn) finish(ws *websocket.Conn) {
	c.finishOnce.Do(func() {
		if c.how.Abrupt {
			ws.NetConn().Close()
			return
		}
		msg := websocket.FormatCloseMessage(c.how.Code, c.how.Reason)
		if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
			ws.NetConn().Close()
			return
		}
		ws.SetReadDeadline(time.Now().Add(closeWait))
	})
}

func (c *conn) writer() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case f := <-c.out:
			if f.close != nil {
				c.drop(*f.close)
				return
			}
			c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, f.b); err != nil {
				c.drop(Abrupt)
				return
			}
			c.sim.st.frames.Add(1)
		}
	}
}

// keeper pings, enforces the pong timeout and ends the connection at its
// maximum lifetime.
func (c *conn) keeper() {
	defer c.wg.Done()
	lim := c.mk.lim
	ping := time.NewTicker(lim.pingInterval)
	defer ping.Stop()
	life := time.NewTimer(lim.maxLifetime)
	defer life.Stop()
	pong := time.NewTimer(lim.pongTimeout)
	pong.Stop()
	defer pong.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-life.C:
			c.sim.st.expired.Add(1)
			c.drop(lim.lifetime)
			return
		case now := <-ping.C:
			payload := strconv.FormatInt(now.UnixMilli(), 10)
			c.pmu.Lock()
			if c.unanswered.IsZero() {
				c.unanswered = now
				pong.Reset(lim.pongTimeout)
			}
			c.pings = append(c.pings, payload)
			if len(c.pings) > maxPings {
				c.pings = c.pings[1:]
			}
			c.pmu.Unlock()
			if err := c.ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(writeWait)); err != nil {
				c.drop(Abrupt)
				return
			}
		case now := <-pong.C:
			c.pmu.Lock()
			since := c.unanswered
			c.pmu.Unlock()
			if since.IsZero() {
				continue
			}
			if wait := lim.pongTimeout - now.Sub(since); wait > 0 {
				pong.Reset(wait)
				continue
			}
			c.sim.st.pongTimeouts.Add(1)
			c.drop(Abrupt)
			return
		}
	}
}

// onPong settles pings. Spot counts only a pong that echoes an
// outstanding ping's payload; futures count any pong, solicited or not.
func (c *conn) onPong(payload string) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.mk.m != market.Spot {
		c.pings = c.pings[:0]
		c.unanswered = time.Time{}
		return
	}
	i := slices.Index(c.pings, payload)
	if i < 0 {
		return
	}
	c.pings = c.pings[i+1:]
	c.unanswered = time.Time{}
	if len(c.pings) > 0 {
		// The newer pings went out later; their clock starts now, which
		// is generous by at most one ping interval.
		c.unanswered = time.Now()
	}
}

// overLimit records one incoming message and reports whether the
// connection sent more than MaxIncoming in the last second.
func (c *conn) overLimit() bool {
	now := time.Now()
	limit := c.mk.lim.maxIncoming
	if len(c.incoming) == limit {
		over := now.Sub(c.incoming[0]) < time.Second
		c.incoming = append(c.incoming[:0], c.incoming[1:]...)
		c.incoming = append(c.incoming, now)
		return over
	}
	c.incoming = append(c.incoming, now)
	return false
}

func (c *conn) rateLimit() {
	c.sim.st.rateLimited.Add(1)
	c.drop(Close{Code: websocket.ClosePolicyViolation, Reason: "Too many requests"})
}

func (c *conn) reader() {
	c.ws.SetReadLimit(maxReadBytes)
	c.ws.SetPingHandler(func(data string) error {
		if c.overLimit() {
			c.rateLimit()
			return nil
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.ws.SetPongHandler(func(data string) error {
		if c.overLimit() {
			c.rateLimit()
			return nil
		}
		c.onPong(data)
		return nil
	})
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		select {
		case <-c.done:
			continue // closing: read until the close reply or the deadline
		default:
		}
		if c.overLimit() {
			c.rateLimit()
			continue
		}
		c.sim.st.requests.Add(1)
		c.request(msg)
	}
}

// wsRequest is a JSON request from the client.
type wsRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	ID     json.RawMessage `json:"id"`
}

// request answers one JSON request: SUBSCRIBE, UNSUBSCRIBE,
// LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY.
func (c *conn) request(msg []byte) {
	var req wsRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		c.send(errorFrame(3, "Invalid JSON: "+jsonErrorText(msg, err), nil))
		if c.mk.m != market.Spot {
			// Futures disconnect after invalid JSON (change log 2023-06-22).
			c.closeAfterQueued(Close{Code: websocket.ClosePolicyViolation, Reason: "Invalid request"})
		}
		return
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	if id[0] != 'n' {
		if _, err := strconv.ParseUint(string(id), 10, 64); err != nil {
			c.send(errorFrame(2, "Invalid request: request ID must be an unsigned integer", nil))
			return
		}
	}
	var params []json.RawMessage
	if len(req.Params) > 0 && !bytes.Equal(req.Params, []byte("null")) {
		if err := json.Unmarshal(req.Params, &params); err != nil {
			c.send(errorFrame(2, "Invalid request: params must be an array", id))
			return
		}
	}
	s := c.sim
	switch req.Method {
	case "SUBSCRIBE", "UNSUBSCRIBE":
		names, ok := stringParams(params)
		if !ok || len(names) == 0 {
			c.send(errorFrame(2, "Invalid request: invalid stream", id))
			return
		}
		for _, n := range names {
			if !c.mk.validStream(n) {
				c.send(errorFrame(2, "Invalid request: invalid stream", id))
				return
			}
		}
		s.mu.Lock()
		if req.Method == "SUBSCRIBE" {
			fresh := 0
			for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
				if _, ok := c.streams[n]; !ok {
					fresh++
				}
			}
			if len(c.streams)+fresh > c.mk.lim.maxStreams {
				s.mu.Unlock()
				c.send(errorFrame(4, "Too many subscriptions", id))
				if c.mk.m != market.Spot {
					c.closeAfterQueued(Close{Code: websocket.ClosePolicyViolation, Reason: "Invalid request"})
				}
				return
			}
			for _, n := range names {
				c.addStream(n)
			}
		} else {
			for _, n := range names {
				c.removeStream(n)
			}
		}
		// Queued under the lock: the ack precedes the first frame of a
		// new stream and follows the last frame of a removed one.
		c.send(c.resultFrame([]byte("null"), id))
		s.mu.Unlock()
	case "LIST_SUBSCRIPTIONS":
		s.mu.Lock()
		list, _ := json.Marshal(append([]string{}, c.order...))
		s.mu.Unlock()
		c.send(c.resultFrame(list, id))
	case "SET_PROPERTY":
		if len(params) != 2 || string(params[0]) != `"combined"` || (string(params[1]) != "true" && string(params[1]) != "false") {
			c.send(errorFrame(2, "Invalid request: invalid property", id))
			return
		}
		c.combined.Store(string(params[1]) == "true")
		c.send(c.resultFrame([]byte("null"), id))
	case "GET_PROPERTY":
		if len(params) != 1 || string(params[0]) != `"combined"` {
			c.send(errorFrame(2, "Invalid request: invalid property", id))
			return
		}
		c.send(c.resultFrame([]byte(strconv.FormatBool(c.combined.Load())), id))
	default:
		c.send(errorFrame(2, fmt.Sprintf("Invalid request: unknown variant `%s`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`", req.Method), id))
	}
}

func stringParams(params []json.RawMessage) ([]string, bool) {
	out := make([]string, 0, len(params))
	for _, p := range params {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// resultFrame answers a request: {"result":..,"id":..}; COIN-M puts the id
// first, as recorded.
func (c *conn) resultFrame(result, id []byte) []byte {
	var b []byte
	if c.mk.m == market.COINM {
		b = append(b, `{"id":`...)
		b = append(b, id...)
		b = append(b, `,"result":`...)
		b = append(b, result...)
		return append(b, '}')
	}
	b = append(b, `{"result":`...)
	b = append(b, result...)
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// errorFrame is {"error":{"code":..,"msg":..},"id":..}; without an id
// when the request had none that could be read.
func errorFrame(code int, msg string, id []byte) []byte {
	m, _ := json.Marshal(msg)
	b := fmt.Appendf(nil, `{"error":{"code":%d,"msg":%s}`, code, m)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	return append(b, '}')
}

// jsonErrorText words a JSON syntax error as Binance's parser does:
// "expected value at line 1 column 1".
func jsonErrorText(msg []byte, err error) string {
	off := int64(len(msg))
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	line, col := 1, 1
	for i := int64(0); i < off-1 && i < int64(len(msg)); i++ {
		if msg[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	what := "expected value"
	if se == nil {
		what = "invalid type"
	}
	return fmt.Sprintf("%s at line %d column %d", what, line, col)
}

// serverShutdownFrame is the documented serverShutdown event, wrapped in
// the envelope on a combined connection.
func (c *conn) serverShutdownFrame(ms int64) []byte {
	b := fmt.Appendf(nil, `{"e":"serverShutdown","E":%d}`, ms)
	if c.combined.Load() {
		return wrap("!serverShutdown", b)
	}
	return b
}
