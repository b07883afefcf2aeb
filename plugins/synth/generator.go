package synth

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Point returns sequence number n as the source emits it.
func (c *Config) Point(n uint64, received time.Time) sluice.Point {
	p := sluice.Point{
		Measurement: c.Measurement,
		Tags: []sluice.Tag{
			{Key: "source", Value: "synth"},
			{Key: "symbol", Value: c.Symbols[n%uint64(len(c.Symbols))]},
		},
		Fields: []sluice.Field{
			{Key: "price", Value: sluice.Float(100 + float64(n%1000)/8)},
			{Key: "seq", Value: sluice.Int(int64(n))},
			{Key: "size", Value: sluice.Uint(n % 7)},
			{Key: "even", Value: sluice.Bool(n%2 == 0)},
			{Key: "label", Value: sluice.String("p" + strconv.FormatUint(n, 10))},
		},
		Time:     c.Start.Add(time.Duration(n) * time.Millisecond),
		Received: received,
	}
	if c.ExtraFieldAfter > 0 && n >= c.ExtraFieldAfter {
		p.Fields = append(p.Fields, sluice.Field{Key: "extra", Value: sluice.Float(float64(n) / 2)})
	}
	return p
}

// failure is the error Run fails with once FailAfter points are out.
func (c *Config) failure() error {
	err := fmt.Errorf("synth: failing as configured after %d points", c.FailAfter)
	if c.FailPermanent {
		return sdk.Permanent(err)
	}
	return err
}

// EncodePosition is the position meaning "n is the next to emit": 8
// big-endian bytes.
func EncodePosition(n uint64) sluice.Position {
	return binary.BigEndian.AppendUint64(nil, n)
}

func decodePosition(p sluice.Position) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("resume position is %d bytes, want 8", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

const (
	// minTick is the shortest pause between two ticks of points: at
	// 100 000/s a tick carries 500 points.
	minTick = 5 * time.Millisecond
	// maxBacklog bounds what a host that held the source up (EmitWait
	// blocked) is owed: past a second's worth, points are let go rather
	// than sent in one burst.
	maxBacklog = time.Second
)

// ticker paces Run. A rate is kept by counting the points due since Run
// began and emitting them in ticks at least minTick apart, not by a pause
// per point: a timer per point at 4000/s (250µs) fires late and costs
// more than the point: 4000/s came out near 600/s, and 100 000/s near
// 3000/s.
type ticker struct {
	pace  *pacer // nil: no rate, one point a tick, no pause
	timer *time.Timer
}

func newTicker(rate float64) *ticker {
	if rate <= 0 {
		return &ticker{}
	}
	return &ticker{pace: newPacer(rate, time.Now()), timer: time.NewTimer(time.Hour)}
}

// wait waits for the next tick and returns how many points are due.
func (t *ticker) wait(ctx context.Context) (uint64, error) {
	if t.pace == nil {
		return 1, ctx.Err()
	}
	t.timer.Reset(max(time.Until(t.pace.next()), minTick))
	select {
	case <-t.timer.C:
		return t.pace.due(time.Now()), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (t *ticker) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// pacer counts the points due at a rate since a start time. It is pure:
// the time is passed in.
type pacer struct {
	rate    float64
	start   time.Time
	counted uint64 // points due so far, handed out by due
	backlog uint64 // most points due returns at once
}

func newPacer(rate float64, start time.Time) *pacer {
	return &pacer{rate: rate, start: start, backlog: max(1, uint64(rate*maxBacklog.Seconds()))}
}

// due returns how many points have come due between the last call and
// now, at most a backlog's worth.
func (p *pacer) due(now time.Time) uint64 {
	// Multiplied before dividing, so that whole points come out whole.
	want := uint64(max(0, float64(now.Sub(p.start))) * p.rate / float64(time.Second))
	if want <= p.counted {
		return 0
	}
	n := want - p.counted
	if n > p.backlog {
		n = p.backlog
		p.counted = want - n
	}
	p.counted += n
	return n
}

// next is when the next point comes due, rounded up to the nanosecond so
// that due counts it then.
func (p *pacer) next() time.Time {
	return p.start.Add(time.Duration(math.Ceil(float64(p.counted+1) * float64(time.Second) / p.rate)))
}
