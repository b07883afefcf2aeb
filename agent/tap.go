package agent

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice"
)

// tapQueue bounds each tap subscriber's queue, in batches. A subscriber
// that falls behind loses batches (counted), never the pipeline's time.
const tapQueue = 256

// tapHub fans normalized points of a feed out to `sluice tap` clients.
// Publish never blocks: a full subscriber queue drops the batch and
// counts its points.
//
// Lifecycle: the zero value is ready; close ends every subscription and
// refuses new ones.
type tapHub struct {
	n      atomic.Int32 // subscribers, read without the lock on the hot path
	mu     sync.Mutex
	subs   map[*tapSub]struct{}
	closed bool
}

// tapSub is one subscription. Its channel carries formatted lines, one
// chunk per batch; the hub closes it.
type tapSub struct {
	feed, measurement string
	ch                chan []byte
	dropped           atomic.Uint64 // points lost because the queue was full
}

// subscribe registers a subscriber for feed's points, of one measurement
// if measurement is not empty. It returns nil once the hub is closed.
func (h *tapHub) subscribe(feed, measurement string) *tapSub {
	s := &tapSub{feed: feed, measurement: measurement, ch: make(chan []byte, tapQueue)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if h.subs == nil {
		h.subs = make(map[*tapSub]struct{})
	}
	h.subs[s] = struct{}{}
	h.n.Add(1)
	return s
}

// unsubscribe removes s and closes its channel; it may be called after close.
func (h *tapHub) unsubscribe(s *tapSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		h.n.Add(-1)
		close(s.ch)
	}
}

// close ends every subscription.
func (h *tapHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		h.n.Add(-1)
		close(s.ch)
	}
}

// publish offers a feed's batch to its subscribers. The points are
// formatted here, since the caller may reuse them once publish returns.
func (h *tapHub) publish(feed string, points []sluice.Point) {
	if h == nil || h.n.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.feed != feed {
			continue
		}
		var chunk []byte
		n := 0
		for i := range points {
			if s.measurement == "" || points[i].Measurement == s.measurement {
				chunk = appendLine(chunk, &points[i])
				n++
			}
		}
		if n == 0 {
			continue
		}
		select {
		case s.ch <- chunk:
		default:
			s.dropped.Add(uint64(n))
		}
	}
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
