package binance

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.1.0"

// Source is the Binance market-data source: it implements sdk.Source.
//
// Lifecycle: New has no side effects; Configure validates (and, unless
// ValidateOnly, keeps) a feed's config; Run connects and emits until its
// context ends. A Source runs one feed once.
type Source struct {
	log *slog.Logger
	cfg *settings
}

// New returns an unconfigured source logging to log (nil: discard).
func New(log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Source{log: log}
}

// Info describes the plugin.
func (s *Source) Info() sdk.Info {
	return sdk.Info{Name: "binance", Version: Version, Capabilities: []string{sdk.CapResume, sdk.CapUnique}}
}

// Configure checks the feed's config, naming every bad key, and returns
// the measurements the configured streams emit.
func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	var c Config
	if err := req.Decode(&c); err != nil {
		return nil, err
	}
	feed := req.Feed
	if feed == "" {
		feed = "binance"
	}
	cfg, err := c.resolve(feed)
	if err != nil {
		return nil, err
	}
	if !req.ValidateOnly {
		s.cfg = cfg
	}
	return cfg.measurements(), nil
}

// errNotConfigured is returned by Run before a successful Configure.
var errNotConfigured = errors.New("binance: Run before Configure")

// Run streams the configured feed until ctx ends. resume is a position
// this source checkpointed before (see Position); trades missed since then
// are backfilled over REST, within max_backfill.
func (s *Source) Run(ctx context.Context, resume sluice.Position, out *sdk.Emitter) error {
	return s.RunTo(ctx, resume, out)
}

// Emitter is where a run's points go: *sdk.Emitter, or a test's
// collector. Emit must not block; EmitWait may; Checkpoint records a
// position covering every point emitted before it.
type Emitter interface {
	Emit(p sluice.Point) bool
	EmitWait(ctx context.Context, p sluice.Point) error
	Checkpoint(pos sluice.Position)
}

// RunTo is Run with any Emitter.
func (s *Source) RunTo(ctx context.Context, resume sluice.Position, out Emitter) error {
	if s.cfg == nil {
		return errNotConfigured
	}
	return newRunner(s.cfg, s.log, out).run(ctx, resume)
}

var _ sdk.Source = (*Source)(nil)
