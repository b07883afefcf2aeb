package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
)

// outputSet is the configured sinks and the outputs that write the disk
// buffer into them, opened and closed as one.
//
// Lifecycle: newOutputSet has no side effects. Open opens every sink, in
// name order, declares to it the measurements the buffer saved (its
// backlog is written under their keys), and starts its output; if any of
// that fails, Open stops what it started (without draining: the backlog
// stays buffered) and closes what it opened. Once Open has succeeded,
// the outputs' Declare and status may be used from any goroutine, and
// Close drains every output within its ctx (feeds stopped first: nothing
// is appended meanwhile), then closes every sink. Close is idempotent.
type outputSet struct {
	cfg   map[string]config.Sink
	buf   *pipeline.Buffer
	lag   *prometheus.HistogramVec
	scrub *redact.Scrubber
	log   *slog.Logger

	// Written by Open only; read-only once it returns.
	outputs  map[string]*pipeline.Output
	observed map[string]*observedSink

	closeOnce sync.Once
	closeErr  error
}

// newOutputSet returns the outputs of the sinks in cfg, reading from buf.
// lag observes each committed point's lag per sink; scrub masks known
// secrets in the sinks' errors.
func newOutputSet(cfg map[string]config.Sink, buf *pipeline.Buffer, lag *prometheus.HistogramVec, scrub *redact.Scrubber, log *slog.Logger) *outputSet {
	return &outputSet{cfg: cfg, buf: buf, lag: lag, scrub: scrub, log: log,
		outputs: make(map[string]*pipeline.Output, len(cfg)), observed: make(map[string]*observedSink, len(cfg))}
}

// Open opens the sinks and starts their outputs.
func (s *outputSet) Open(ctx context.Context) error {
	for _, name := range sortedKeys(s.cfg) {
		if err := s.open(ctx, name); err != nil {
			s.abort()
			return err
		}
	}
	return nil
}

func (s *outputSet) open(ctx context.Context, name string) error {
	sc := s.cfg[name]
	log := s.log.With("sink", name)
	sink, err := newSink(sc, log)
	if err != nil {
		return fmt.Errorf("sink %s: %w", name, err)
	}
	if err := sink.Open(ctx); err != nil {
		return fmt.Errorf("open sink %s: %w", name, err)
	}
	obs := newObservedSink(sink, s.lag.WithLabelValues(name))
	obs.scrub = s.scrub
	o := pipeline.NewOutput(name, obs, sc.Pipeline, s.buf.Cursor(name), log, nil)
	s.outputs[name], s.observed[name] = o, obs // closed by abort if what follows fails
	// The buffer may hold a backlog from before a restart: the sink must
	// know every uniqueness key before it writes any of it.
	if err := declareBacklog(ctx, o, s.buf.Measurements(), log); err != nil {
		return err
	}
	o.Start()
	return nil
}

// abort stops the outputs Open started, at once, and closes their sinks.
func (s *outputSet) abort() {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	s.Close(stopped) // what it says about the backlog left is no news
}

// Close drains every output within ctx, all at once, then closes every
// sink. The error says which sinks kept points buffered for the next
// start; a sink that fails to close is logged.
func (s *outputSet) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for _, o := range s.outputs {
			wg.Go(func() {
				if err := o.Close(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, name := range sortedKeys(s.outputs) {
			if err := s.outputs[name].Sink().Close(); err != nil {
				s.log.Error("close sink", "sink", name, "error", err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// byName is the running outputs by sink name (read-only).
func (s *outputSet) byName() map[string]*pipeline.Output { return s.outputs }

// running names the sinks that run, for planReload.
func (s *outputSet) running() map[string]bool {
	names := make(map[string]bool, len(s.outputs))
	for name := range s.outputs {
		names[name] = true
	}
	return names
}

// status is every output's status and its last batch's lag, by name.
func (s *outputSet) status() []SinkStatus {
	out := make([]SinkStatus, 0, len(s.outputs))
	for _, name := range sortedKeys(s.outputs) {
		ss := SinkStatus{OutputStatus: s.outputs[name].Status()}
		if obs := s.observed[name]; obs != nil {
			ss.LagSeconds = obs.LastLag().Seconds()
			ss.Stats = obs.stats()
			if err := obs.health(); err != nil && ss.State != pipeline.SinkStopped {
				ss.State, ss.LastError = pipeline.SinkFailed, err.Error()
			}
		}
		out = append(out, ss)
	}
	return out
}

// declareBacklog declares to o the measurements the buffer saved, so
// that its backlog is written under their keys. A measurement saved with
// two different keys (by feeds from before keys were checked across
// feeds) is left out: the sink keeps the key it has. A key the sink
// refuses is logged: the feed declaring it fails when it starts, and the
// sink keeps the key it has; nothing else waits for it.
func declareBacklog(ctx context.Context, o *pipeline.Output, ms []sluice.Measurement, log *slog.Logger) error {
	byName := make(map[string][]sluice.Measurement)
	for _, m := range ms {
		byName[m.Name] = append(byName[m.Name], m)
	}
	var keep []sluice.Measurement
	for _, name := range sortedKeys(byName) {
		decl := byName[name]
		if !slices.ContainsFunc(decl, func(m sluice.Measurement) bool { return !sameKey(m.Unique, decl[0].Unique) }) {
			keep = append(keep, decl[0])
			continue
		}
		keys := make([]string, len(decl))
		for i, m := range decl {
			keys[i] = formatKey(m.Unique)
		}
		log.Warn("a measurement was declared with different uniqueness keys; the sink keeps the key it has until a feed declares one",
			"measurement", name, "keys", keys)
	}
	err := o.Declare(ctx, keep)
	if err != nil && sinks.IsRefused(err) {
		log.Error("sink refuses a saved uniqueness key; it keeps the key it has", "error", err)
		return nil
	}
	return err
}
