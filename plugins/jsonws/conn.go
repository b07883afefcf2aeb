package jsonws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

const (
	// writeTimeout bounds every write, so a stuck peer cannot hold the
	// session past its timers.
	writeTimeout = 10 * time.Second
	// frameQueue is how many read frames may wait for the session loop.
	frameQueue = 64
	// maxReasonBytes bounds how much of a refusing server's body is kept
	// for the error.
	maxReasonBytes = 512
)

// errStale ends a session that received no data for stale_after.
var errStale = errors.New("stale")

// errAsked ends a session whose server asked the client to reconnect.
var errAsked = errors.New("the server asked to reconnect")

// frame is one complete message as read.
type frame struct {
	text     bool // a text frame; else binary, already decompressed
	data     []byte
	received time.Time
}

type sessionResult struct {
	opened  bool // the on_open steps completed
	healthy bool // some message was mapped by a rule
	err     error
}

// session is one connection from dial to close. Its reader goroutine only
// reads; everything else, writes included, happens on the session loop.
type session struct {
	src    *Source
	set    *settings
	conn   *websocket.Conn
	out    sdk.Emitter
	frames chan frame
	rdone  chan struct{} // closed when the reader has stopped, after rerr is set
	rerr   error         // why the reader stopped

	pongs chan struct{} // a pong arrived; buffered 1
	done  chan struct{} // closed when the session ends
	wg    sync.WaitGroup
	buf   []sluice.Point
	// state is what rules remember on this connection: ids a server
	// hands out hold only for the connection.
	state *State
	// replied is set when the server replied to the last heartbeat.
	replied bool
}

func (s *Source) session(ctx context.Context, out sdk.Emitter, reconnect bool) (res sessionResult) {
	conn, err := s.dial(ctx)
	if err != nil {
		res.err = err
		return res
	}
	ss := &session{
		src: s, set: s.set, conn: conn, out: out,
		frames: make(chan frame, frameQueue),
		rdone:  make(chan struct{}),
		pongs:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		state:  NewState(),
	}
	conn.SetPongHandler(func(string) error {
		select {
		case ss.pongs <- struct{}{}:
		default:
		}
		return nil
	})
	ss.wg.Add(1)
	go ss.read()
	defer ss.close()
	// Whatever ends the session but a stop, the messages already read are
	// handled: a server that sends its last trades and closes must not
	// lose them.
	defer func() {
		if ctx.Err() == nil {
			ss.drain(ctx, &res)
		}
	}()

	for i, step := range ss.set.onOpen {
		if err := ss.write(step.send); err != nil {
			res.err = fmt.Errorf("on_open[%d]: %w", i, err)
			return res
		}
		if step.expect != nil {
			if err := ss.await(ctx, i, step, &res); err != nil {
				res.err = err
				return res
			}
		}
	}
	res.opened = true
	s.stats.Connects.Add(1)
	if reconnect {
		s.event(out, sdk.EventReconnect, "connected")
	} else {
		s.event(out, sdk.EventConnect, "connected")
	}
	s.log.Info("connected", "feed", s.feed)
	res.err = ss.loop(ctx, &res)
	return res
}

func (s *Source) dial(ctx context.Context) (*websocket.Conn, error) {
	set := s.set
	d := websocket.Dialer{
		HandshakeTimeout:  set.handshakeTimeout,
		EnableCompression: set.compression,
	}
	if set.tls != nil {
		d.TLSClientConfig = set.tls.Clone()
	}
	switch {
	case set.proxyFromEnv:
		d.Proxy = http.ProxyFromEnvironment
	case set.proxy != nil:
		d.Proxy = http.ProxyURL(set.proxy)
	}
	u, err := set.url.render()
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	hdr := make(http.Header, len(set.headers))
	for name, t := range set.headers {
		v, err := t.render()
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		hdr.Set(name, v)
	}
	conn, resp, err := d.DialContext(ctx, u, hdr)
	if err != nil {
		return nil, dialError(err, resp)
	}
	return conn, nil
}

// dialError classifies a failed handshake. The refusals a retry cannot fix
// (the credentials, the permission, the path) and certificates that do not
// verify are permanent; the rest (refused connections, 5xx, 429) are not.
func dialError(err error, resp *http.Response) error {
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		msg := "handshake refused: " + resp.Status
		if resp.Body != nil {
			b, _ := readCapped(resp.Body, maxReasonBytes)
			if r := strings.TrimSpace(string(b)); r != "" {
				msg += ": " + r
			}
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return sdk.Permanent(errors.New(msg))
		}
		return errors.New(msg)
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return sdk.Permanent(fmt.Errorf("tls: %w", err))
	}
	return fmt.Errorf("dial: %w", err)
}

// readError classifies the end of a connection. Close codes 1008 (policy
// violation) and 1003 (unsupported data) say the server will not serve
// this client as configured.
func readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		msg := fmt.Sprintf("server closed the connection: %d", ce.Code)
		if ce.Text != "" {
			msg += " " + ce.Text
		}
		switch ce.Code {
		case websocket.ClosePolicyViolation, websocket.CloseUnsupportedData:
			return sdk.Permanent(errors.New(msg))
		}
		return errors.New(msg)
	}
	return fmt.Errorf("read: %w", err)
}

// read delivers complete frames until the connection fails or the session
// ends. Frames over a cap are counted and skipped here; the connection is
// kept.
func (ss *session) read() {
	defer ss.wg.Done()
	st := &ss.src.stats
	for {
		typ, r, err := ss.conn.NextReader()
		if err != nil {
			ss.rerr = err
			close(ss.rdone)
			return
		}
		// NextReader discards whatever of this frame is left unread.
		data, err := readCapped(r, ss.set.maxMessage)
		if errors.Is(err, errTooLarge) {
			st.Oversize.Add(1)
			ss.out.Discarded("oversize", 1)
			if ss.src.sampler.Allow("oversize") {
				ss.src.log.Warn("frame over max_message_bytes dropped", "feed", ss.src.feed, "max_message_bytes", ss.set.maxMessage)
			}
			continue
		}
		if err != nil {
			ss.rerr = err
			close(ss.rdone)
			return
		}
		if typ == websocket.BinaryMessage {
			wire := len(data)
			data, err = decompress(data, ss.set.decompress, ss.set.maxDecompressed)
			switch {
			case errors.Is(err, errTooLarge):
				st.DecompressRefused.Add(1)
				ss.out.Discarded("decompress_refused", 1)
				if ss.src.sampler.Allow("decompress_refused") {
					ss.src.log.Warn("binary frame inflates past max_decompressed_bytes; dropped", "feed", ss.src.feed,
						"max_decompressed_bytes", ss.set.maxDecompressed, "bytes", wire)
				}
				continue
			case err != nil:
				st.DecompressErrors.Add(1)
				ss.out.Discarded("decompress_errors", 1)
				if ss.src.sampler.Allow("decompress_error") {
					ss.src.log.Warn("binary frame did not decompress; dropped", "feed", ss.src.feed, "error", err)
				}
				continue
			}
		}
		// Before anything parses it: gjson recurses once per level.
		if tooDeep(data, ss.set.maxDepth) {
			st.TooDeep.Add(1)
			ss.out.Discarded("too_deep", 1)
			if ss.src.sampler.Allow("too_deep") {
				ss.src.log.Warn("frame nests deeper than max_json_depth; dropped", "feed", ss.src.feed,
					"max_json_depth", ss.set.maxDepth, "bytes", len(data), "sample", clip(data))
			}
			continue
		}
		select {
		case ss.frames <- frame{text: typ == websocket.TextMessage, data: data, received: ss.src.now()}:
		case <-ss.done:
			return
		}
	}
}

func (ss *session) close() {
	close(ss.done)
	ss.conn.Close()
	ss.wg.Wait()
}

// write sends a message as a text frame. The rendered text may hold
// secrets: it is never logged.
func (ss *session) write(m message) error {
	b, err := m.render()
	if err != nil {
		return err
	}
	return ss.writeRaw(b)
}

func (ss *session) writeRaw(b []byte) error {
	if err := ss.conn.SetWriteDeadline(ss.src.now().Add(writeTimeout)); err != nil {
		return err
	}
	return ss.conn.WriteMessage(websocket.TextMessage, b)
}

// await handles frames until step.count of them satisfy step's expect
// condition. Those are handled too (a rule may remember from an ack), but
// are not counted unmatched. Frames read before the connection failed
// still count: a server may acknowledge and close at once.
func (ss *session) await(ctx context.Context, i int, step openStep, res *sessionResult) error {
	timer := time.NewTimer(step.timeout)
	defer timer.Stop()
	got := 0
	// take handles one frame and reports whether the step is complete.
	take := func(f frame) (bool, error) {
		ack := false
		if gjson.ValidBytes(f.data) {
			root := gjson.ParseBytes(f.data)
			for j := range step.fail {
				if step.fail[j].holds(root, ss.state) {
					return false, sdk.Permanent(fmt.Errorf("on_open[%d]: the server refused: %s", i, clip(f.data)))
				}
			}
			ack = step.expect.holds(root, ss.state)
		}
		data, err := ss.handle(ctx, f, ack)
		if err != nil {
			return false, err
		}
		res.healthy = res.healthy || data
		if ack {
			got++
		}
		return got >= step.count, nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ss.rdone:
			for {
				select {
				case f := <-ss.frames:
					if done, err := take(f); done || err != nil {
						return err
					}
					continue
				default:
				}
				return readError(ss.rerr)
			}
		case <-timer.C:
			if step.count > 1 {
				return fmt.Errorf("on_open[%d]: %d of %d replies satisfying expect within %s", i, got, step.count, step.timeout)
			}
			return fmt.Errorf("on_open[%d]: no reply satisfying expect within %s", i, step.timeout)
		case f := <-ss.frames:
			if done, err := take(f); done || err != nil {
				return err
			}
		}
	}
}

// drain handles the frames read and not yet handled: a server that sends
// its last trades and closes must not lose them to the order in which
// select picks ready channels, nor to a write that failed meanwhile. The
// connection is going: a reply that cannot be written is no error here.
func (ss *session) drain(ctx context.Context, res *sessionResult) {
	for {
		select {
		case f := <-ss.frames:
			data, _ := ss.handle(ctx, f, false)
			res.healthy = res.healthy || data
		default:
			return
		}
	}
}

// loop runs the open connection: frames, pings, heartbeats, staleness.
func (ss *session) loop(ctx context.Context, res *sessionResult) error {
	set := ss.set
	var pingC, hbC, staleC, pongC <-chan time.Time
	if set.pingInterval > 0 {
		t := time.NewTicker(set.pingInterval)
		defer t.Stop()
		pingC = t.C
	}
	if set.heartbeatEvery > 0 {
		t := time.NewTicker(set.heartbeatEvery)
		defer t.Stop()
		hbC = t.C
	}
	var stale *time.Timer
	lagged := false // the stale timer fired with frames waiting, since the last data
	if set.staleAfter > 0 {
		stale = time.NewTimer(set.staleAfter)
		defer stale.Stop()
		staleC = stale.C
	}
	pong := time.NewTimer(set.pongTimeout)
	pong.Stop()
	defer pong.Stop()
	// A heartbeat's reply is due within heartbeat.timeout.
	var replyC <-chan time.Time
	reply := time.NewTimer(time.Hour)
	reply.Stop()
	defer reply.Stop()
	stats := time.NewTicker(statsEvery)
	defer stats.Stop()
	lastLogged := uint64(0)

	for {
		select {
		case <-ctx.Done():
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = ss.conn.WriteControl(websocket.CloseMessage, msg, ss.src.now().Add(time.Second))
			return ctx.Err()
		case <-ss.rdone:
			ss.drain(ctx, res)
			return readError(ss.rerr)
		case f := <-ss.frames:
			data, err := ss.handle(ctx, f, false)
			if errors.Is(err, errAsked) {
				msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
				_ = ss.conn.WriteControl(websocket.CloseMessage, msg, ss.src.now().Add(time.Second))
			}
			if err != nil {
				return err
			}
			if ss.replied && replyC != nil {
				reply.Stop()
				replyC = nil
			}
			if data {
				res.healthy = true
				if stale != nil {
					stale.Reset(set.staleAfter)
					lagged = false
				}
			}
		case <-pingC:
			if err := ss.conn.WriteControl(websocket.PingMessage, nil, ss.src.now().Add(writeTimeout)); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			if pongC == nil {
				pong.Reset(set.pongTimeout)
				pongC = pong.C
			}
		case <-ss.pongs:
			pong.Stop()
			pongC = nil
		case <-pongC:
			return fmt.Errorf("no pong within %s of a ping", set.pongTimeout)
		case <-hbC:
			if err := ss.write(set.heartbeat); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			if set.heartbeatTimeout > 0 && replyC == nil {
				ss.replied = false
				reply.Reset(set.heartbeatTimeout)
				replyC = reply.C
			}
		case <-replyC:
			return fmt.Errorf("no reply to a heartbeat within %s", set.heartbeatTimeout)
		case <-staleC:
			// Frames waiting in the queue came in before the timer
			// fired: the plugin, not the server, was slow. Look at them
			// first, once per silence, so that a busy host does not call
			// a live feed stale (and a flood of unmatched messages still
			// goes stale one stale_after later).
			if len(ss.frames) > 0 && !lagged {
				lagged = true
				stale.Reset(set.staleAfter)
				continue
			}
			return fmt.Errorf("%w: no data for %s", errStale, set.staleAfter)
		case <-stats.C:
			if n := ss.src.stats.frames(); n != lastLogged {
				lastLogged = n
				ss.src.log.Info("jsonws stats", ss.src.stats.attrs()...)
			}
		}
	}
}

// handle answers a server ping, takes a heartbeat's reply, or maps a
// message. data reports a message some rule matched, an alive rule
// included: what keeps a connection, and the feed, from going stale. An
// ack (a message on_open expected) is not counted unmatched.
func (ss *session) handle(ctx context.Context, f frame, ack bool) (data bool, err error) {
	src, st := ss.src, &ss.src.stats
	st.Messages.Add(1)
	var root gjson.Result
	if gjson.ValidBytes(f.data) {
		root = gjson.ParseBytes(f.data)
	}
	if r := ss.set.heartbeatReply; r != nil && r.matches(f, root, ss.state) {
		st.Replies.Add(1)
		ss.replied = true
		return false, nil
	}
	if len(ss.set.reconnectWhen) > 0 && root.Exists() && allHold(ss.set.reconnectWhen, root, ss.state) {
		st.Acks.Add(1)
		return false, fmt.Errorf("%w: %s", errAsked, clip(f.data))
	}
	if a := ss.answerFor(f, root); a != nil {
		b, err := a.reply.renderFor(root, false)
		if err != nil {
			// The ping lacks what the reply takes from it: the server
			// will likely drop us for not answering, which is logged.
			st.AnswerErrors.Add(1)
			ss.out.Discarded("answer_errors", 1)
			if src.sampler.Allow("answer_error") {
				src.log.Warn("cannot answer a server ping", "feed", src.feed, "error", err, "sample", clip(f.data))
			}
			return false, nil
		}
		st.Answered.Add(1)
		if err := ss.writeRaw(b); err != nil {
			return false, fmt.Errorf("answering a server ping: %w", err)
		}
		return false, nil
	}
	points, errs, res := ss.set.mapper.mapMessage(f.data, f.received, ss.buf[:0], ss.state)
	ss.buf = points[:0]
	for _, e := range errs {
		if e.Rule == "" && e.Msg == ErrNotJSON {
			if ack {
				continue
			}
			st.NotJSON.Add(1)
			ss.out.Discarded("not_json", 1)
			if src.sampler.Allow("not_json") {
				src.log.Debug("message is not JSON", "feed", src.feed, "sample", clip(f.data))
			}
			continue
		}
		st.MapErrors.Add(1)
		ss.out.Discarded("map_errors", 1)
		if src.sampler.Allow("map_error") {
			src.log.Warn("mapping error; point skipped", "feed", src.feed, "rule", e.Rule, "path", e.Path, "error", e.Msg)
		}
	}
	switch {
	case res.matched:
		st.Matched.Add(1)
	case res.alive:
		st.Heartbeats.Add(1)
	case res.remembered:
		st.Remembered.Add(1)
	case ack:
		st.Acks.Add(1)
	case len(errs) == 0:
		st.Unmatched.Add(1)
		ss.out.Discarded("unmatched", 1)
		if src.sampler.Allow("unmatched") {
			src.log.Debug("no rule matched a message", "feed", src.feed, "sample", clip(f.data))
		}
	}
	for i := range points {
		if ss.out.EmitWithin(ctx, points[i], ss.set.queueWait) {
			st.Points.Add(1)
		} else {
			st.Dropped.Add(1)
		}
		points[i] = sluice.Point{} // the buffer is reused; drop references
	}
	alive := res.matched || res.alive
	if alive {
		src.live.data(f.received)
	}
	return alive, nil
}

// matches reports whether a frame is the message r describes; root is
// the frame parsed, or the zero Result if it is not JSON.
func (r *recognise) matches(f frame, root gjson.Result, st *State) bool {
	if r.text != "" {
		return f.text && string(f.data) == r.text
	}
	return root.Exists() && allHold(r.match, root, st)
}

func allHold(cs []cond, root gjson.Result, st *State) bool {
	for j := range cs {
		if !cs[j].holds(root, st) {
			return false
		}
	}
	return true
}

// answerFor returns the answer for a server ping, or nil.
func (ss *session) answerFor(f frame, root gjson.Result) *answer {
	return answerOf(ss.set.answers, f, root, ss.state)
}

// clip shortens a message for a log line or an error.
func clip(b []byte) string {
	const max = 256
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
