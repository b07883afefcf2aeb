package binance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.1.0"

// Source is the Binance market-data source: it implements sdk.Source,
// sdk.Resumer and sdk.Reconfigurer.
//
// Lifecycle: New has no side effects; Configure validates (and, unless
// ValidateOnly, keeps) a feed's config; Resume keeps the position the
// next Run starts from; Run connects and emits until its
// context ends; Reconfigure, while Run runs, applies a new config to it
// (symbols and streams subscribed and unsubscribed on the open
// connections) or answers sdk.ErrRestartNeeded. A Source runs one feed
// once.
type Source struct {
	log *slog.Logger

	reconf sync.Mutex // one Reconfigure at a time

	mu     sync.Mutex
	cfg    *settings       // the config Run starts with, and then the one in force
	run    *runner         // the Run in progress, if any
	resume sluice.Position // where the next Run starts (see Position)
}

// New returns an unconfigured source logging to log (nil: discard).
func New(log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Source{log: log}
}

// Info describes the plugin.
func (s *Source) Info() sdk.Info { return sdk.Info{Name: "binance", Version: Version} }

// Configure checks the feed's config, naming every bad key, and returns
// the measurements the configured streams emit.
func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg, err := resolveRequest(req)
	if err != nil {
		return nil, err
	}
	if !req.ValidateOnly {
		s.mu.Lock()
		s.cfg = cfg
		s.mu.Unlock()
	}
	return cfg.measurements(), nil
}

// Reconfigure applies a new config to the running feed, validated as
// Configure validates it. Symbols and stream kinds added or removed are
// subscribed and unsubscribed on the open connections (new connections
// only for streams that do not fit), and stale_after, book_interval,
// book_depth and max_backfill take effect; any other change returns
// sdk.ErrRestartNeeded, wrapped with the keys that changed, and leaves
// the running config alone. It returns once the change is in force; the
// subscriptions go out in the background, paced under Binance's message
// limit. Without a Run in progress it is Configure.
func (s *Source) Reconfigure(ctx context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg, err := resolveRequest(req)
	if err != nil {
		return nil, err
	}
	if req.ValidateOnly {
		return cfg.measurements(), nil
	}
	s.reconf.Lock()
	defer s.reconf.Unlock()
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r != nil {
		if err := r.reconfigure(ctx, cfg); err != nil && !errors.Is(err, errRunEnded) {
			return nil, err
		}
	}
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	return cfg.measurements(), nil
}

// resolveRequest decodes and validates a feed's config, reporting every
// problem at once.
func resolveRequest(req sdk.ConfigureRequest) (*settings, error) {
	var c Config
	check := req.Check(&c)
	feed := req.Feed
	if feed == "" {
		feed = "binance"
	}
	return c.resolve(feed, check)
}

// errNotConfigured is returned by Run before a successful Configure.
var errNotConfigured = errors.New("binance: Run before Configure")

// Resume makes the next Run start from pos, a position this source
// checkpointed before (see Position): trades missed since then are
// backfilled over REST, within max_backfill. A position Run cannot read
// (another market's, a damaged one) is logged and ignored.
func (s *Source) Resume(pos sluice.Position) error {
	s.mu.Lock()
	s.resume = pos
	s.mu.Unlock()
	return nil
}

// Run streams the configured feed until ctx ends, from the position
// Resume was given if any.
func (s *Source) Run(ctx context.Context, out sdk.Emitter) error {
	s.mu.Lock()
	resume := s.resume
	s.mu.Unlock()
	return s.RunTo(ctx, resume, out)
}

// Emitter is the part of sdk.Emitter a run uses: the SDK's, or a test's
// collector. Emit must not block, and reports false for a point it
// dropped; EmitWithin is Emit waiting at most its wait for room;
// EmitWait may block; Checkpoint records a position covering
// every point emitted before it; Recovered says that every point dropped
// so far has been emitted again or given up and reported (see
// sdk.Emitter.Recovered).
type Emitter interface {
	Emit(p sluice.Point) bool
	EmitWithin(ctx context.Context, p sluice.Point, wait time.Duration) bool
	EmitWait(ctx context.Context, p sluice.Point) error
	Checkpoint(pos sluice.Position)
	Recovered()
	Event(ev sdk.Event)
}

// RunTo is Run with any Emitter.
func (s *Source) RunTo(ctx context.Context, resume sluice.Position, out Emitter) error {
	s.mu.Lock()
	if s.cfg == nil {
		s.mu.Unlock()
		return errNotConfigured
	}
	r := newRunner(s.cfg, s.log, out)
	s.run = r
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.run == r {
			s.run = nil
		}
		s.mu.Unlock()
	}()
	return r.run(ctx, resume)
}

var (
	_ sdk.Source       = (*Source)(nil)
	_ sdk.Resumer      = (*Source)(nil)
	_ sdk.Reconfigurer = (*Source)(nil)
)
