// Package synth is a synthetic source: deterministic points at a chosen
// rate, for trying Sluice without a network and for the agent's tests.
package synth

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
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
	// Rate in points per second; 0 means as fast as the host takes them.
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
func (s *Source) Run(ctx context.Context, resume sluice.Position, out *sdk.Emitter) error {
	next, err := decodePosition(resume)
	if err != nil {
		return err
	}
	s.log.Info("synth starting", "next_seq", next, "rate", s.cfg.Rate, "count", s.cfg.Count)
	var tick <-chan time.Time
	if s.cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	first := next
	for ; s.cfg.Count == 0 || next < s.cfg.Count; next++ {
		if s.cfg.FailAfter > 0 && next-first >= s.cfg.FailAfter {
			err := fmt.Errorf("synth: failing as configured after %d points", s.cfg.FailAfter)
			if s.cfg.FailPermanent {
				return sdk.Permanent(err)
			}
			return err
		}
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		p := s.cfg.Point(next, time.Now())
		for range s.cfg.Repeat {
			if err := out.EmitWait(ctx, p); err != nil {
				return err
			}
		}
		out.Checkpoint(EncodePosition(next + 1))
	}
	s.log.Info("synth reached its count; idling", "count", s.cfg.Count)
	<-ctx.Done()
	return ctx.Err()
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
