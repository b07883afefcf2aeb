package jsonws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/internal/logfmt"
	"github.com/sluicehq/sluice/internal/logsample"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.1.0"

const (
	// statsEvery is how often the counters are logged while they move.
	statsEvery = time.Minute
	// sampleEvery throttles per-message log lines (mapping errors,
	// unmatched messages, dropped frames) to one per kind per interval;
	// the counters see every one.
	sampleEvery = 10 * time.Second
)

// Stats counts what happened to messages. Every counter only grows.
type Stats struct {
	Messages          atomic.Uint64 // data frames received and within caps
	Matched           atomic.Uint64 // messages some rule matched
	Unmatched         atomic.Uint64 // JSON messages no rule matched
	NotJSON           atomic.Uint64 // messages that are not JSON
	MapErrors         atomic.Uint64 // points skipped: missing path, wrong kind
	Points            atomic.Uint64 // points handed to the host
	Dropped           atomic.Uint64 // points the host's queue had no room for
	Oversize          atomic.Uint64 // frames over max_message_bytes, dropped
	DecompressRefused atomic.Uint64 // binary frames inflating past max_decompressed_bytes
	DecompressErrors  atomic.Uint64 // binary frames that did not decompress
	TooDeep           atomic.Uint64 // frames nesting deeper than max_json_depth, dropped
	Answered          atomic.Uint64 // server pings answered
	AnswerErrors      atomic.Uint64 // server pings a reply could not be made for
	Replies           atomic.Uint64 // the server's replies to our heartbeats
	Acks              atomic.Uint64 // messages on_open expected that no rule matched
	Remembered        atomic.Uint64 // messages only remember rules matched
	Heartbeats        atomic.Uint64 // messages only alive rules matched
	Connects          atomic.Uint64 // connections opened (on_open done)
}

func (s *Stats) attrs() []any {
	return []any{
		"messages", s.Messages.Load(), "matched", s.Matched.Load(), "unmatched", s.Unmatched.Load(),
		"not_json", s.NotJSON.Load(), "map_errors", s.MapErrors.Load(), "points", s.Points.Load(),
		"dropped", s.Dropped.Load(), "oversize", s.Oversize.Load(),
		"decompress_refused", s.DecompressRefused.Load(), "decompress_errors", s.DecompressErrors.Load(),
		"too_deep", s.TooDeep.Load(), "answered", s.Answered.Load(), "answer_errors", s.AnswerErrors.Load(),
		"replies", s.Replies.Load(), "acks", s.Acks.Load(), "remembered", s.Remembered.Load(),
		"heartbeats", s.Heartbeats.Load(), "connects", s.Connects.Load(),
	}
}

// frames counts every frame read, dropped ones included: a feed that
// only sends frames it drops still gets its counters logged.
func (s *Stats) frames() uint64 {
	return s.Messages.Load() + s.Oversize.Load() + s.DecompressRefused.Load() + s.DecompressErrors.Load() + s.TooDeep.Load()
}

// Source implements sdk.Source and sdk.Sampler.
//
// Lifecycle: New, then Configure (any number of times with ValidateOnly,
// then once for real), then Run once; Run returns when ctx ends or on a
// failure no reconnect can fix.
type Source struct {
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	feed  string
	set   *settings
	stats Stats
	// scrub learns every secret the config holds or its templates render,
	// and masks them in the source's log, its errors and its feed_events.
	scrub *redact.Scrubber
	live  *liveness // set by Run

	sampler *logsample.Sampler
}

// New returns an unconfigured source logging through sdk.Logger.
func New() *Source { return newSource(sdk.Logger()) }

func newSource(log *slog.Logger) *Source {
	scrub := redact.NewScrubber()
	// Durations as text: the agent re-logs this JSON, where nanoseconds
	// would read 6.3e+08.
	h := logfmt.Handler(scrub.Handler(log.Handler()))
	s := &Source{log: slog.New(h), now: time.Now, sleep: backoff.Sleep, scrub: scrub}
	s.sampler = logsample.New(sampleEvery, func() time.Time { return s.now() })
	return s
}

func (s *Source) Info() sdk.Info { return sdk.Info{Name: "jsonws", Version: Version} }

// Configure checks the whole config, rules included, and resolves every
// secret reference once. With ValidateOnly it changes nothing.
func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	_, set, err := parseConfig(req, s.scrub)
	if err != nil {
		return nil, s.scrubConfigErr(err)
	}
	if errs := set.checkSecrets(); len(errs) > 0 {
		return nil, s.scrubConfigErr(errs)
	}
	// feed_events, where the agent writes this source's events, is the
	// agent's to declare.
	ms := set.mapper.Measurements()
	if !req.ValidateOnly {
		s.set, s.feed = set, req.Feed
	}
	return ms, nil
}

// Run connects and reconnects until ctx ends. It returns an
// sdk.Permanent error when the server refuses the feed in a way a retry
// cannot fix (handshake 401/403/404, close 1008/1003, an on_open fail
// condition, a certificate that does not verify), and a plain error when
// the reconnect budget is spent, which the agent answers by restarting the
// plugin with its own backoff. The source has no resume position.
func (s *Source) Run(ctx context.Context, out sdk.Emitter) error {
	return s.run(ctx, out)
}

// scrubConfigErr masks secrets in the messages of a Configure error,
// keeping its keys.
func (s *Source) scrubConfigErr(err error) error {
	var ces sdk.ConfigErrors
	if !errors.As(err, &ces) {
		return s.scrub.Error(err)
	}
	out := make(sdk.ConfigErrors, len(ces))
	for i, ce := range ces {
		out[i] = sdk.ConfigError{Key: ce.Key, Msg: s.scrub.String(ce.Msg)}
	}
	return out
}

func (s *Source) run(ctx context.Context, out sdk.Emitter) (err error) {
	// What ends the source reaches the agent's status and log: a server
	// may have quoted a secret in it.
	defer func() { err = s.scrub.Error(err) }()
	if s.set == nil {
		return errors.New("jsonws: Run before Configure")
	}
	set := s.set
	s.log.Info("jsonws starting", "feed", s.feed, "url", redact.URL(set.url.placeholder()))
	defer func() { s.log.Info("jsonws stopped", s.stats.attrs()...) }()

	// Staleness is judged on its own clock, connected or not: a feed
	// whose server cannot be reached has no data either.
	s.live = newLiveness(set.staleAfter, s.now, out, s.log.With("feed", s.feed))
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	watching.Go(func() { s.live.watch(watchCtx) })
	defer func() {
		stopWatch()
		watching.Wait()
	}()

	bo := backoff.New(backoff.Policy{Initial: time.Duration(set.reconnect.Initial), Max: time.Duration(set.reconnect.Max)})
	bud := newBudget(set.reconnect.Budget, time.Duration(set.reconnect.Window))
	opened := false
	for {
		res := s.session(ctx, out, opened)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		opened = opened || res.opened
		err := res.err
		if perm := (*sdk.PermanentError)(nil); errors.As(err, &perm) {
			s.event(out, sdk.EventFailed, err.Error())
			return err
		}
		if errors.Is(err, errStale) {
			// Reported once per silence: a stale feed reconnects every
			// stale_after until data flows, each a reconnect event.
			s.live.markStale(err.Error())
		} else {
			s.event(out, sdk.EventDisconnect, err.Error())
		}
		if res.healthy {
			bo.Reset()
		}
		if !bud.take(s.now()) {
			err = fmt.Errorf("reconnect budget exhausted: %d reconnects within %s; last error: %w",
				set.reconnect.Budget, time.Duration(set.reconnect.Window), err)
			s.event(out, sdk.EventBudgetExhausted, err.Error())
			return err
		}
		wait := bo.Next()
		// The counters as the connection ends: the periodic line may be
		// a minute away.
		s.log.Info("jsonws stats", s.stats.attrs()...)
		s.log.Warn("connection ended; reconnecting", "feed", s.feed, "error", err,
			"retry_in", wait.Round(time.Millisecond), "attempt", bo.Attempts())
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// event reports what happened to the connection; the agent writes it as
// a feed_events point. Its message is scrubbed of the config's secrets (a
// server's refusal may quote them back).
func (s *Source) event(out sdk.Emitter, kind sdk.EventKind, msg string) {
	out.Event(sdk.Event{Kind: kind, Time: s.now(), Message: s.scrub.String(msg)})
}

var (
	_ sdk.Source  = (*Source)(nil)
	_ sdk.Sampler = (*Source)(nil)
)
