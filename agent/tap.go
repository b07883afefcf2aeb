package agent

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
)

// A subscriber's queue holds at most tapQueue batches and tapQueueBytes
// of formatted lines (one batch more if that batch alone is larger). A
// subscriber that falls behind loses batches (counted), never the
// pipeline's time, and never grows the agent's memory past the bound.
const (
	tapQueue      = 256
	tapQueueBytes = 1 << 20
)

// tapWriteTimeout ends a stream whose client has not taken a batch for
// this long while points flow, so that a client that stopped reading
// frees its place. A variable for the tests.
var tapWriteTimeout = time.Minute

var (
	errTapFull   = errors.New("tap: the most subscribers are served")
	errTapClosed = errors.New("tap: closed")
)

// tapHub fans normalized points of a feed out to `sluice tap` clients.
// Publish never blocks: a full subscriber queue drops the batch and
// counts its points. Each batch is formatted once, and the lines are
// shared by every subscriber that wants them.
//
// Lifecycle: the zero value is ready and has no limit on subscribers
// (max sets one, before use); close ends every subscription and refuses
// new ones.
type tapHub struct {
	max    int
	n      atomic.Int32 // subscribers, read without the lock on the hot path
	mu     sync.Mutex
	subs   map[*tapSub]struct{}
	closed bool
}

// tapSub is one subscription: a queue of formatted chunks, one per batch.
type tapSub struct {
	feed, measurement string
	// wake is signalled (it holds at most one token) when a chunk is
	// queued and when the subscription ends.
	wake    chan struct{}
	dropped atomic.Uint64 // points lost because the queue was full

	mu     sync.Mutex
	queue  [][]byte // shared with other subscribers: never written to
	bytes  int
	closed bool // by the hub: take returns what is queued, then ends
}

// subscribe registers a subscriber for feed's points, of one measurement
// if measurement is not empty. It fails with errTapFull when max
// subscribers are served, errTapClosed once the hub is closed.
func (h *tapHub) subscribe(feed, measurement string) (*tapSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errTapClosed
	}
	if h.max > 0 && len(h.subs) >= h.max {
		return nil, errTapFull
	}
	if h.subs == nil {
		h.subs = make(map[*tapSub]struct{})
	}
	s := &tapSub{feed: feed, measurement: measurement, wake: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	h.n.Add(1)
	return s, nil
}

// unsubscribe removes s and drops what it has queued; it may be called
// after close.
func (h *tapHub) unsubscribe(s *tapSub) {
	h.mu.Lock()
	_, ok := h.subs[s]
	delete(h.subs, s)
	if ok {
		h.n.Add(-1)
	}
	h.mu.Unlock()
	s.mu.Lock()
	s.closed, s.queue, s.bytes = true, nil, 0
	s.mu.Unlock()
}

// close ends every subscription; each still gets what it had queued.
func (h *tapHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		h.n.Add(-1)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.signal()
	}
}

func (s *tapSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// offer queues a chunk of n points, or counts them as dropped.
func (s *tapSub) offer(chunk []byte, n int) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	fits := len(s.queue) < tapQueue && (s.bytes == 0 || s.bytes+len(chunk) <= tapQueueBytes)
	if fits {
		s.queue = append(s.queue, chunk)
		s.bytes += len(chunk)
	}
	s.mu.Unlock()
	if !fits {
		s.dropped.Add(uint64(n))
		return
	}
	s.signal()
}

// take moves the queued chunks into buf and reports whether the
// subscription has ended.
func (s *tapSub) take(buf [][]byte) ([][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf = append(buf[:0], s.queue...)
	clear(s.queue)
	s.queue, s.bytes = s.queue[:0], 0
	return buf, s.closed
}

// publish offers a feed's batch to its subscribers. The points are
// formatted here, since the caller may reuse them once publish returns.
func (h *tapHub) publish(feed string, points []sluice.Point) {
	if h == nil || h.n.Load() == 0 {
		return
	}
	var subs []*tapSub
	h.mu.Lock()
	for s := range h.subs {
		if s.feed == feed {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	b := formatBatch(points)
	for _, s := range subs {
		if chunk, n := b.lines(s.measurement); n > 0 {
			s.offer(chunk, n)
		}
	}
}

// tapBatch is a batch formatted once as line protocol, cut per
// measurement on demand.
type tapBatch struct {
	points []sluice.Point
	all    []byte
	ends   []int // ends[i]: where point i's line ends in all
	cut    map[string]tapCut
}

type tapCut struct {
	chunk []byte
	n     int
}

func formatBatch(points []sluice.Point) *tapBatch {
	b := &tapBatch{points: points, ends: make([]int, len(points))}
	b.all = make([]byte, 0, 128*len(points))
	for i := range points {
		b.all = appendLine(b.all, &points[i])
		b.ends[i] = len(b.all)
	}
	return b
}

// lines returns the lines of the points of one measurement (all points
// if measurement is empty) and their number. Subscribers with the same
// filter get the same slice.
func (b *tapBatch) lines(measurement string) ([]byte, int) {
	if measurement == "" {
		return b.all[:len(b.all):len(b.all)], len(b.points)
	}
	if c, ok := b.cut[measurement]; ok {
		return c.chunk, c.n
	}
	var c tapCut
	for i := range b.points {
		if b.points[i].Measurement != measurement {
			continue
		}
		start := 0
		if i > 0 {
			start = b.ends[i-1]
		}
		c.chunk = append(c.chunk, b.all[start:b.ends[i]]...)
		c.n++
	}
	if b.cut == nil {
		b.cut = make(map[string]tapCut)
	}
	b.cut[measurement] = c
	return c.chunk, c.n
}

// appendLine appends p as one line of InfluxDB line protocol, the event
// time in Unix nanoseconds, and a newline.
func appendLine(b []byte, p *sluice.Point) []byte {
	b = appendEscaped(b, p.Measurement, ", ")
	for _, t := range p.Tags {
		b = append(b, ',')
		b = appendEscaped(b, t.Key, ",= ")
		b = append(b, '=')
		b = appendEscaped(b, t.Value, ",= ")
	}
	for i, f := range p.Fields {
		if i == 0 {
			b = append(b, ' ')
		} else {
			b = append(b, ',')
		}
		b = appendEscaped(b, f.Key, ",= ")
		b = append(b, '=')
		b = appendValue(b, f.Value)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, p.Time.UnixNano(), 10)
	return append(b, '\n')
}

func appendValue(b []byte, v sluice.Value) []byte {
	switch v.Kind() {
	case sluice.KindFloat:
		return strconv.AppendFloat(b, v.Float(), 'g', -1, 64)
	case sluice.KindInt:
		return append(strconv.AppendInt(b, v.Int(), 10), 'i')
	case sluice.KindUint:
		return append(strconv.AppendUint(b, v.Uint(), 10), 'u')
	case sluice.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case sluice.KindString:
		b = append(b, '"')
		b = appendEscaped(b, v.Str(), `"\`)
		return append(b, '"')
	}
	return append(b, '?')
}

// appendEscaped appends s with a backslash before each character in
// special, and newlines written as \n so one point stays one line.
func appendEscaped(b []byte, s, special string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			b = append(b, '\\', 'n')
			continue
		case strings.IndexByte(special, c) >= 0:
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}
