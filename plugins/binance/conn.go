package binance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/rest"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// Connection timing. Binance drops a client that sends more than 5
// messages a second on spot and 10 on futures (pings and pongs count), so
// every write is paced, at msgSpacing or futuresMsgSpacing: 4 and 8 a
// second, leaving room for messages that the network bunches together.
const (
	msgSpacing        = 250 * time.Millisecond
	futuresMsgSpacing = 125 * time.Millisecond
	writeWait         = 10 * time.Second
	handshakeWait     = 15 * time.Second
	ackWait           = 10 * time.Second
	closeWait         = 2 * time.Second
	clientPing        = 30 * time.Second // our pings, whose pongs prove the link is alive
	readTimeout       = 3 * clientPing   // no frame, ping or pong for this long: the link is dead
	maxFrameBytes     = 16 << 20
	// maxKeptFrameBuffer is the most a connection's frame buffer keeps
	// between frames; bigger frames (depth snapshots of many levels) get
	// a buffer of their own.
	maxKeptFrameBuffer = 1 << 20
)

// Variables for the tests' sake (export_test.go).
var (
	maxURLStreams  = 2000 // bytes of stream names put in the URL; the rest are SUBSCRIBEd
	maxSubscribeBy = 100  // stream names per SUBSCRIBE message
)

// frame is one parsed data frame on its way from a connection's reader to
// the runner.
type frame struct {
	points   []sluice.Point
	ev       wire.Event // Depth is a copy the frame owns
	received time.Time
}

// closeInfo is how a connection ended.
type closeInfo struct {
	code   int // websocket close code; 1006 when the link dropped without one
	reason string
	err    error
}

func (ci closeInfo) String() string {
	s := fmt.Sprintf("close %d", ci.code)
	if ci.reason != "" {
		s += " " + ci.reason
	}
	if ci.code == websocket.CloseAbnormalClosure && ci.err != nil {
		s += ": " + ci.err.Error()
	}
	return s
}

// HandshakeError is a refused WebSocket handshake: Binance answered the
// upgrade with an HTTP error.
type HandshakeError struct {
	Status     int
	RetryAfter time.Duration
	Body       string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused with HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// wsConn is one WebSocket connection to a combined-stream endpoint.
//
// Lifecycle: dial returns it connected, with its reader running; requests
// (subscribe) may then be made from any goroutine; close ends it (once)
// and done is closed when the reader has returned. Every write, the
// reader's pongs included, goes through write, which holds writeMu and
// paces messages.
type wsConn struct {
	id     uint64
	ws     *websocket.Conn
	opened time.Time
	log    *slog.Logger
	out    chan<- frame
	// onControl receives what the connection cannot handle itself: error
	// frames without a request id, and serverShutdown notices.
	onControl  func(c *wsConn, ev wire.Event)
	onBadFrame func(err error, data []byte)

	writeMu   sync.Mutex
	lastWrite time.Time
	spacing   time.Duration // between two writes

	mu     sync.Mutex
	nextID int64
	acks   map[int64]chan error

	done     chan struct{} // closed when the reader returns
	ended    closeInfo     // set before done closes
	stop     chan struct{} // closed by close
	stopOnce sync.Once
	frames   atomic.Int64   // data frames read
	pinging  sync.WaitGroup // the pinger, which read waits for
}

var connIDs atomic.Uint64

// dialConn opens a combined-stream connection to base (a WebSocket base
// URL plus route) carrying streams: as many as fit in the URL, and the
// rest by SUBSCRIBE, waiting for every ack. Frames go to out until ctx
// ends or the connection does.
func dialConn(ctx context.Context, base string, streams []string, out chan<- frame, log *slog.Logger,
	onControl func(*wsConn, wire.Event), onBadFrame func(error, []byte), m market.Market) (*wsConn, error) {
	inURL, later := splitForURL(streams)
	u := base + "/stream"
	if len(inURL) > 0 {
		u += "?streams=" + strings.Join(inURL, "/")
	}
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: handshakeWait,
		ReadBufferSize:   64 << 10,
	}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			return nil, &HandshakeError{Status: resp.StatusCode, RetryAfter: rest.RetryAfter(resp.Header), Body: string(body[:n])}
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &wsConn{
		id:         connIDs.Add(1),
		ws:         ws,
		opened:     time.Now(),
		out:        out,
		onControl:  onControl,
		onBadFrame: onBadFrame,
		acks:       map[int64]chan error{},
		spacing:    msgSpacing,
		done:       make(chan struct{}),
		stop:       make(chan struct{}),
	}
	if m.Futures() {
		c.spacing = futuresMsgSpacing
	}
	c.log = log.With("conn", c.id)
	c.pinging.Add(1)
	go c.pinger()
	go c.read(ctx, wire.NewParser(m))
	for len(later) > 0 {
		n := min(len(later), maxSubscribeBy)
		if err := c.request(ctx, "SUBSCRIBE", later[:n]); err != nil {
			c.close(websocket.CloseNormalClosure, "")
			<-c.done
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		later = later[n:]
	}
	return c, nil
}

// splitForURL puts the first streams, up to maxURLStreams bytes of names,
// in the URL; the rest are subscribed once connected.
func splitForURL(streams []string) (inURL, later []string) {
	n := 0
	for i, s := range streams {
		n += len(s) + 1
		if n > maxURLStreams {
			return streams[:i], streams[i:]
		}
	}
	return streams, nil
}

// write sends one message under the write lock, no sooner than
// c.spacing after the previous one.
func (c *wsConn) write(f func() error) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if wait := c.spacing - time.Since(c.lastWrite); wait > 0 {
		select {
		case <-time.After(wait):
		case <-c.stop:
			return net.ErrClosed
		}
	}
	c.lastWrite = time.Now()
	return f()
}

// request sends a SUBSCRIBE or UNSUBSCRIBE and waits for its ack, matched
// by id. An error frame answering it comes back as a *wire.ServerError.
func (c *wsConn) request(ctx context.Context, method string, streams []string) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ack := make(chan error, 1)
	c.acks[id] = ack
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
	}()
	msg, err := json.Marshal(struct {
		Method string   `json:"method"`
		Params []string `json:"params"`
		ID     int64    `json:"id"`
	}{method, streams, id})
	if err != nil {
		return err
	}
	if err := c.write(func() error {
		c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		return c.ws.WriteMessage(websocket.TextMessage, msg)
	}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case err := <-ack:
		return err
	case <-t.C:
		return fmt.Errorf("%s: no answer to request %d within %v", method, id, ackWait)
	case <-c.done:
		return fmt.Errorf("%s: connection ended: %v", method, c.ended)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read is the connection's reader: it parses every frame, answers pings
// (through write, under the lock), settles acks and hands data frames to
// the runner. It returns when the connection ends.
func (c *wsConn) read(ctx context.Context, p *wire.Parser) {
	defer func() {
		c.stopOnce.Do(func() { close(c.stop) })
		c.ws.Close()
		c.pinging.Wait()
		close(c.done)
	}()
	c.ws.SetReadLimit(maxFrameBytes)
	extend := func() {
		select {
		case <-c.stop:
			return // closing: keep closeWait's deadline
		default:
		}
		c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	}
	extend()
	c.ws.SetPingHandler(func(data string) error {
		extend()
		err := c.write(func() error {
			return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		})
		if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	// Each frame is read into buf, reused: the parser keeps nothing of a
	// frame's bytes (it copies or interns every string it stores), and
	// ReadMessage's fresh buffer per frame was two thirds of the bytes
	// this process allocated.
	var buf bytes.Buffer
	for {
		if buf.Cap() > maxKeptFrameBuffer {
			buf = bytes.Buffer{} // a rare big frame: do not hold its buffer
		}
		buf.Reset()
		typ, r, err := c.ws.NextReader()
		if err == nil {
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.ended = closeInfo{code: websocket.CloseAbnormalClosure, err: err}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.ended = closeInfo{code: ce.Code, reason: ce.Text, err: err}
			}
			return
		}
		data := buf.Bytes()
		extend()
		if typ != websocket.TextMessage {
			continue
		}
		received := time.Now()
		points, ev, err := p.Parse(data, received, nil)
		if err != nil {
			c.onBadFrame(err, data)
			continue
		}
		switch ev.Kind {
		case wire.EventResult, wire.EventError:
			if c.settle(ev) {
				continue
			}
			c.onControl(c, ev)
			continue
		case wire.EventServerShutdown:
			c.onControl(c, ev)
			continue
		case wire.EventUnknown:
			continue
		case wire.EventDepthUpdate:
			ev.Depth = ev.Depth.Clone()
		}
		c.frames.Add(1)
		select {
		case c.out <- frame{points: points, ev: ev, received: received}:
		case <-ctx.Done():
			c.ended = closeInfo{code: websocket.CloseGoingAway, reason: "stopping", err: ctx.Err()}
			return
		case <-c.stop:
			// Closing: the frames still arriving are the overlap of a
			// handover, which the new connection carries.
		}
	}
}

// settle delivers a request's answer to its waiter, reporting whether
// there was one.
func (c *wsConn) settle(ev wire.Event) bool {
	c.mu.Lock()
	ack, ok := c.acks[ev.ID]
	c.mu.Unlock()
	if !ok || ev.ID < 0 {
		return false
	}
	var err error
	if ev.Kind == wire.EventError {
		err = ev.Err
	}
	ack <- err
	return true
}

// pinger sends our own pings; their pongs keep the read deadline moving
// when the market is quiet and the server pings rarely (every 3 minutes
// on futures).
func (c *wsConn) pinger() {
	defer c.pinging.Done()
	t := time.NewTicker(clientPing)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			err := c.write(func() error {
				return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
			})
			if err != nil {
				return // the reader sees the connection fail
			}
		}
	}
}

// close ends the connection with a close frame, then gives the server
// closeWait to answer before the reader gives up. It is idempotent and
// does not wait: done says when the reader has returned.
func (c *wsConn) close(code int, reason string) {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.writeMu.Lock()
		err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
		c.writeMu.Unlock()
		if err != nil {
			c.ws.Close()
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(closeWait))
	})
}
