// Package synth is a synthetic source: deterministic points at a chosen
// rate, for trying Sluice without a network and for the agent's tests.
package synth

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.1.0"

// Config is the feed's `config:` block.
type Config struct {
	// Measurement to write, default "synth".
	Measurement string `json:"measurement"`
	// Symbols are cycled through, one point each; default ["AAA"].
	Symbols []string `json:"symbols"`
	// Rate in points per second, fractions allowed; 0 means as fast as
	// the host takes them. Fast rates are emitted in ticks of many points
	// every 5ms or so; a host that holds the source up is owed at most a
	// second's worth of points afterwards.
	Rate float64 `json:"rate"`
	// Count stops after this many points in total (0: never). The
	// source then idles until the host stops it.
	Count uint64 `json:"count"`
	// ExtraFieldAfter adds a field "extra" to points from this sequence
	// number on (0: never), to show a sink growing a column.
	ExtraFieldAfter uint64 `json:"extra_field_after"`
	// Repeat sends every point this many times (default 1), to show that
	// a uniqueness key keeps one row.
	Repeat int `json:"repeat"`
	// Start is the event time of sequence 0; point n is Start + n ms.
	Start time.Time `json:"start"`
	// FailAfter makes Run fail once this many points have been emitted in
	// one run (0: never), to exercise the agent's restart handling;
	// FailPermanent makes that failure permanent.
	FailAfter     uint64 `json:"fail_after"`
	FailPermanent bool   `json:"fail_permanent"`
}

// Source implements sdk.Source.
type Source struct {
	cfg Config
	log *slog.Logger
}

// New returns an unconfigured synthetic source.
func New() *Source { return &Source{log: sdk.Logger()} }

func (s *Source) Info() sdk.Info {
	return sdk.Info{Name: "synth", Version: Version, Capabilities: []string{sdk.CapResume, sdk.CapUnique}}
}

func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg := Config{Measurement: "synth", Symbols: []string{"AAA"}, Repeat: 1,
		Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := req.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs sdk.ConfigErrors
	if cfg.Measurement == "" {
		errs = append(errs, sdk.ConfigError{Key: "measurement", Msg: "must not be empty"})
	}
	if len(cfg.Symbols) == 0 {
		errs = append(errs, sdk.ConfigError{Key: "symbols", Msg: "must list at least one symbol"})
	}
	if cfg.Rate < 0 {
		errs = append(errs, sdk.ConfigError{Key: "rate", Msg: "must not be negative"})
	}
	if cfg.Repeat < 1 {
		errs = append(errs, sdk.ConfigError{Key: "repeat", Msg: "must be at least 1"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !req.ValidateOnly {
		s.cfg = cfg
	}
	return []sluice.Measurement{{Name: cfg.Measurement, Unique: []string{"symbol", "seq"}}}, nil
}

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

// Run emits points from the resume position on. The position is the next
// sequence number to emit, as 8 big-endian bytes.
//
// A rate is kept by counting the points due since Run began and emitting
// them in ticks at least minTick apart, not by a pause per point: a timer
// per point at 4000/s (250µs) fires late and costs more than the point:
// 4000/s came out near 600/s, and 100 000/s near 3000/s.
func (s *Source) Run(ctx context.Context, resume sluice.Position, out *sdk.Emitter) error {
	next, err := decodePosition(resume)
	if err != nil {
		return err
	}
	s.log.Info("synth starting", "next_seq", next, "rate", s.cfg.Rate, "count", s.cfg.Count)
	var (
		pace  *pacer
		timer *time.Timer
	)
	if s.cfg.Rate > 0 {
		pace = newPacer(s.cfg.Rate, time.Now())
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	first := next
	more := func() bool { return s.cfg.Count == 0 || next < s.cfg.Count }
	for more() {
		n := uint64(1)
		if pace != nil {
			timer.Reset(max(time.Until(pace.next()), minTick))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			n = pace.due(time.Now())
		}
		now := time.Now()
		for ; n > 0 && more(); n-- {
			if s.cfg.FailAfter > 0 && next-first >= s.cfg.FailAfter {
				out.Checkpoint(EncodePosition(next))
				err := fmt.Errorf("synth: failing as configured after %d points", s.cfg.FailAfter)
				if s.cfg.FailPermanent {
					return sdk.Permanent(err)
				}
				return err
			}
			p := s.cfg.Point(next, now)
			for range s.cfg.Repeat {
				if err := out.EmitWait(ctx, p); err != nil {
					return err
				}
			}
			next++
		}
		out.Checkpoint(EncodePosition(next))
	}
	s.log.Info("synth reached its count; idling", "count", s.cfg.Count)
	<-ctx.Done()
	return ctx.Err()
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

// EncodePosition is the position meaning "n is the next to emit".
func EncodePosition(n uint64) sluice.Position {
	return binary.BigEndian.AppendUint64(nil, n)
}

func decodePosition(p sluice.Position) (uint64, error) {
	switch len(p) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(p), nil
	}
	return 0, fmt.Errorf("resume position is %d bytes, want 8", len(p))
}

var _ sdk.Source = (*Source)(nil)
