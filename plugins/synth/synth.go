package synth

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.2.0"

// Config is the feed's `config:` block.
type Config struct {
	Measurement     string    `json:"measurement"`       // default "synth"
	Symbols         []string  `json:"symbols"`           // cycled through, one point each; default ["AAA"]
	Rate            float64   `json:"rate"`              // points per second; 0: as fast as the host takes them
	Count           uint64    `json:"count"`             // stop after this many points (0: never), then idle
	ExtraFieldAfter uint64    `json:"extra_field_after"` // add a field "extra" from this seq on (0: never)
	Repeat          int       `json:"repeat"`            // send every point this many times; default 1
	Start           time.Time `json:"start"`             // event time of seq 0; point n is Start + n ms
	// FailAfter makes Run fail once it has emitted this many points (0:
	// never), permanently with FailPermanent, to exercise restarts.
	FailAfter     uint64 `json:"fail_after"`
	FailPermanent bool   `json:"fail_permanent"`
}

// Source is the synthetic source: an sdk.Source and an sdk.Resumer.
type Source struct {
	cfg  Config
	next uint64 // the sequence number Run starts at
	log  *slog.Logger
}

// New returns an unconfigured synthetic source.
func New() *Source { return &Source{log: sdk.Logger()} }

func (s *Source) Info() sdk.Info { return sdk.Info{Name: "synth", Version: Version} }

// Configure checks the config, naming every bad key at once.
func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg := Config{Measurement: "synth", Symbols: []string{"AAA"}, Repeat: 1, Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := req.Check(&cfg)
	c.Required("measurement", cfg.Measurement != "")
	c.That("symbols", len(cfg.Symbols) > 0, "must list at least one symbol")
	c.That("rate", cfg.Rate >= 0, "must not be negative")
	c.Int("repeat", cfg.Repeat, 1, math.MaxInt)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if !req.ValidateOnly {
		s.cfg = cfg
	}
	return []sluice.Measurement{{Name: cfg.Measurement, Unique: []string{"symbol", "seq"}}}, nil
}

// Resume starts the next Run at the position's sequence number.
func (s *Source) Resume(pos sluice.Position) (err error) {
	s.next, err = decodePosition(pos)
	return err
}

// Run emits points from s.next on, each checkpointed by the number of
// the next one, in ticks that keep the configured rate (see pacer).
func (s *Source) Run(ctx context.Context, out sdk.Emitter) error {
	s.log.Info("synth starting", "next_seq", s.next, "rate", s.cfg.Rate, "count", s.cfg.Count)
	tick := newTicker(s.cfg.Rate)
	defer tick.stop()
	for first := s.next; s.cfg.Count == 0 || s.next < s.cfg.Count; {
		n, err := tick.wait(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		for ; n > 0 && (s.cfg.Count == 0 || s.next < s.cfg.Count); n-- {
			if s.cfg.FailAfter > 0 && s.next-first >= s.cfg.FailAfter {
				out.Checkpoint(EncodePosition(s.next))
				return s.cfg.failure()
			}
			p := s.cfg.Point(s.next, now)
			for range s.cfg.Repeat {
				if err := out.EmitWait(ctx, p); err != nil {
					return err
				}
			}
			s.next++
		}
		out.Checkpoint(EncodePosition(s.next))
	}
	s.log.Info("synth reached its count; idling", "count", s.cfg.Count)
	<-ctx.Done()
	return ctx.Err()
}

var _ sdk.Source = (*Source)(nil)
var _ sdk.Resumer = (*Source)(nil)
