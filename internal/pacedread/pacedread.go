// Package pacedread spaces the reads of a busy connection, so that each
// read system call returns many WebSocket frames rather than one.
//
// A source plugin's reader asks its socket for the next frame as soon as
// it has parsed one. At 10 000 frames a second each read then finds one
// frame: the Binance plugin spent about half of its CPU in read system
// calls and the wake-ups around them (BENCHMARKS.md). Waiting a
// millisecond before reading a socket that had data waiting lets about
// ten frames gather per read at that rate, a hundred at 100 000 a second,
// for at most a millisecond more latency. A socket that made its reader
// wait (a quiet stream) is read at once, so a slow stream's frames are not
// delayed.
package pacedread

import (
	"context"
	"net"
	"time"
)

// Gap is how long a reader pauses before reading again a socket whose
// previous read found data waiting.
const Gap = time.Millisecond

// Conn is a net.Conn whose reads are paced. Its Read is meant for one
// reading goroutine (as a WebSocket connection's reader is); Write and
// the rest are the wrapped connection's.
type Conn struct {
	net.Conn
	gap   time.Duration
	sleep func(time.Duration)
	pause bool // the previous read found data waiting and did not fill its buffer
}

// New wraps c; reads found busy are spaced by gap.
func New(c net.Conn, gap time.Duration) *Conn {
	return &Conn{Conn: c, gap: gap, sleep: time.Sleep}
}

// Read reads from the wrapped connection, first pausing for the gap when
// the previous read returned at once with less than a full buffer: more
// data was likely on its way. A read that filled its buffer, or that had
// to wait for data, is followed by an immediate one.
func (c *Conn) Read(p []byte) (int, error) {
	if c.pause {
		c.sleep(c.gap)
	}
	start := time.Now()
	n, err := c.Conn.Read(p)
	c.pause = err == nil && n > 0 && n < len(p) && time.Since(start) < c.gap/4
	return n, err
}

// Dialer returns a dial function (for websocket.Dialer.NetDialContext)
// whose connections are paced by gap.
func Dialer(gap time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return New(c, gap), nil
	}
}
