package agent

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Bounds on what a plugin's reports can make the agent keep per feed:
// distinct event kinds and discard reasons (past them the counts go to
// "other"), and stale streams (past it a stale report is logged, not
// kept; a feed with that many is shown stale anyway).
const (
	maxEventKinds     = 64
	maxDiscardReasons = 64
	maxStaleStreams   = 4096
)

// StaleStream is what a feed's plugin reported stale: a stream, or the
// feed as a whole (Symbol and Stream empty), without data since Since.
type StaleStream struct {
	Symbol  string    `json:"symbol,omitempty"`
	Stream  string    `json:"stream,omitempty"`
	Since   time.Time `json:"since"`
	Message string    `json:"message,omitempty"`
	// Derived when the snapshot is taken: seconds since Since.
	StaleSeconds float64 `json:"stale_seconds"`
}

// String says what has been stale for how long, for people.
func (s StaleStream) String() string {
	return fmt.Sprintf("%s has had no data for %s (since %s)", s.what(),
		(time.Duration(s.StaleSeconds) * time.Second).String(), s.Since.UTC().Format(time.RFC3339))
}

// what names the stale stream.
func (s StaleStream) what() string {
	switch {
	case s.Symbol != "" && s.Stream != "":
		return s.Symbol + " " + s.Stream
	case s.Stream != "" || s.Symbol != "":
		return s.Symbol + s.Stream
	}
	return "the feed"
}

func staleKey(symbol, stream string) string { return symbol + "\x00" + stream }

// feedCounts is what one batch adds to a feed's counters of events.
type feedCounts struct {
	reconnects, gaps, backfilled uint64
	byKind                       map[string]uint64
}

func (c *feedCounts) kind(k string) {
	if c.byKind == nil {
		c.byKind = make(map[string]uint64)
	}
	c.byKind[k]++
}

// countEvents counts what a plugin with sdk.CapEvents reported.
func countEvents(events []sdk.Event) feedCounts {
	var c feedCounts
	for i := range events {
		ev := &events[i]
		c.kind(string(ev.Kind))
		switch ev.Kind {
		case sdk.EventReconnect:
			c.reconnects++
		case sdk.EventGap:
			c.gaps++
		case sdk.EventBackfill:
			c.backfilled += uint64(max(ev.Count, 0))
		}
	}
	return c
}

// countFeedEvents counts what a plugin built before sdk.CapEvents
// reported: its own feed_events points, whose tag kind says what and
// whose field count how many ids a backfill fetched.
func countFeedEvents(points []sluice.Point) feedCounts {
	var c feedCounts
	for i := range points {
		p := &points[i]
		if p.Measurement != sdk.MeasFeedEvents {
			continue
		}
		kind, _ := p.Tag("kind")
		c.kind(kind)
		switch sdk.EventKind(kind) {
		case sdk.EventReconnect:
			c.reconnects++
		case sdk.EventGap:
			c.gaps++
		case sdk.EventBackfill:
			for _, f := range p.Fields {
				if f.Key != "count" {
					continue
				}
				switch v := f.Value; v.Kind() {
				case sluice.KindInt:
					c.backfilled += uint64(max(v.Int(), 0))
				case sluice.KindUint:
					c.backfilled += v.Uint()
				case sluice.KindFloat:
					c.backfilled += uint64(max(v.Float(), 0))
				}
			}
		}
	}
	return c
}

// addCount adds n to m[key], or to m["other"] once m holds limit keys.
func addCount(m map[string]uint64, key string, n uint64, limit int) {
	if _, ok := m[key]; !ok && len(m) >= limit {
		key = "other"
	}
	m[key] += n
}

// track applies a batch's stale and live events to a feed's stale
// streams (f.mu held), logging each change of state once.
func (f *feed) track(events []sdk.Event, now time.Time) {
	for i := range events {
		ev := &events[i]
		key := staleKey(ev.Symbol, ev.Stream)
		switch ev.Kind {
		case sdk.EventStale:
			if s := f.stale[key]; s != nil {
				s.Message = ev.Message
				if !ev.Since.IsZero() && ev.Since.Before(s.Since) {
					s.Since = ev.Since
				}
				continue
			}
			s := &StaleStream{Symbol: ev.Symbol, Stream: ev.Stream, Since: ev.Since, Message: ev.Message}
			for _, t := range []time.Time{ev.Time, now} {
				if s.Since.IsZero() {
					s.Since = t
				}
			}
			if len(f.stale) >= maxStaleStreams {
				f.log.Warn("stale report not kept: the feed has too many stale streams already", "symbol", s.Symbol, "stream", s.Stream, "stale_streams", len(f.stale))
				continue
			}
			if f.stale == nil {
				f.stale = make(map[string]*StaleStream)
			}
			f.stale[key] = s
			f.log.Warn("feed stale", staleAttrs(s, now)...)
		case sdk.EventLive:
			if s := f.stale[key]; s != nil {
				delete(f.stale, key)
				f.log.Info("feed live again", append(staleAttrs(s, now), "message", ev.Message)...)
			}
		}
	}
}

func staleAttrs(s *StaleStream, now time.Time) []any {
	attrs := []any{"what", s.what(), "since", s.Since.UTC().Format(time.RFC3339), "silent", now.Sub(s.Since).Round(time.Second).String()}
	if s.Message != "" {
		attrs = append(attrs, "reason", s.Message)
	}
	return attrs
}

// staleList is the feed's stale streams, longest stale first (f.mu held).
func (f *feed) staleList(now time.Time) []StaleStream {
	if len(f.stale) == 0 {
		return nil
	}
	out := make([]StaleStream, 0, len(f.stale))
	for _, s := range f.stale {
		c := *s
		c.StaleSeconds = max(now.Sub(c.Since).Seconds(), 0)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b StaleStream) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(staleKey(a.Symbol, a.Stream), staleKey(b.Symbol, b.Stream))
	})
	return out
}

// clearStale forgets the feed's stale streams: its plugin process ended,
// and a new one judges its streams afresh.
func (f *feed) clearStale() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stale) > 0 {
		f.log.Info("stale streams forgotten: the plugin stopped", "stale_streams", len(f.stale))
	}
	f.stale = nil
}

// staleShown is how many stale streams a readiness reason names.
const staleShown = 3

// staleReason is /readyz's reason for a feed with stale streams: the
// feed, and what has been stale for how long.
func staleReason(fs FeedStatus) string {
	var parts []string
	for i, s := range fs.Stale {
		if i == staleShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs.Stale)-staleShown))
			break
		}
		parts = append(parts, s.String())
	}
	return fmt.Sprintf("feed %s is stale: %s", fs.Name, strings.Join(parts, "; "))
}
