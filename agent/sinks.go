package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/all"
)

// newSink builds the sink a config names. The config loader has already
// checked the type and built its options.
func newSink(sc config.Sink, log *slog.Logger) (sinks.Sink, error) {
	t, ok := all.Types.Lookup(sc.Type)
	if !ok {
		return nil, fmt.Errorf("unknown sink type %q", sc.Type)
	}
	return t.New(sc.Options, log)
}

// observedSink sees every batch its sink commits: a Write that returns nil
// (or rejects or skips some points and stores the rest) is the commit, so
// each point's lag from event time to then goes to the lag histogram, and
// the newest point's lag to status. It changes nothing else.
type observedSink struct {
	sinks.Sink
	lag     prometheus.Observer
	scrub   *redact.Scrubber // masks known secrets in the sink's errors
	lastLag atomic.Int64     // nanoseconds; of the newest point of the last batch
}

func newObservedSink(s sinks.Sink, lag prometheus.Observer) *observedSink {
	return &observedSink{Sink: s, lag: lag}
}

func (s *observedSink) Write(ctx context.Context, points []sluice.Point) error {
	err := s.scrub.Error(s.Sink.Write(ctx, points))
	if stored, _, _, settled := sinks.Split(err, len(points)); settled && stored > 0 {
		// A partial write's refused or skipped points are observed too:
		// the sink does not say which they were. A batch with none
		// stored is not a commit.
		s.observe(points, time.Now())
	}
	return err
}

func (s *observedSink) observe(points []sluice.Point, at time.Time) {
	if len(points) == 0 {
		return
	}
	newest := points[0].Time
	for i := range points {
		t := points[i].Time
		s.lag.Observe(at.Sub(t).Seconds())
		if t.After(newest) {
			newest = t
		}
	}
	s.lastLag.Store(int64(at.Sub(newest)))
}

// stats are the sink's own figures, if it keeps any.
func (s *observedSink) stats() []sinks.Stat {
	if r, ok := s.Sink.(sinks.StatsReporter); ok {
		return r.Stats()
	}
	return nil
}

// health is what the sink says of its own connection, if it keeps one
// (sinks.HealthReporter), with known secrets masked; nil when well.
func (s *observedSink) health() error {
	if r, ok := s.Sink.(sinks.HealthReporter); ok {
		return s.scrub.Error(r.Health())
	}
	return nil
}

// LastLag is the lag of the newest point of the last batch written.
func (s *observedSink) LastLag() time.Duration { return time.Duration(s.lastLag.Load()) }

var _ sinks.Sink = (*observedSink)(nil)
