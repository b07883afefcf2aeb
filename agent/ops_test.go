package agent

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

func TestAppendLine(t *testing.T) {
	at := time.Unix(1704067200, 12_000_000)
	tests := []struct {
		p    sluice.Point
		want string
	}{
		{sluice.Point{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTCUSDT"}},
			Fields: []sluice.Field{
				{Key: "price", Value: sluice.Float(42000.5)}, {Key: "qty", Value: sluice.Int(-3)},
				{Key: "id", Value: sluice.Uint(18446744073709551615)}, {Key: "buyer", Value: sluice.Bool(true)},
				{Key: "note", Value: sluice.String(`say "hi" \ bye`)},
			}, Time: at},
			`trades,symbol=BTCUSDT price=42000.5,qty=-3i,id=18446744073709551615u,buyer=true,note="say \"hi\" \\ bye" 1704067200012000000`},
		{sluice.Point{Measurement: "a b,c", Tags: []sluice.Tag{{Key: "k=1", Value: "v 1,x"}},
			Fields: []sluice.Field{{Key: "f g", Value: sluice.String("two\nlines")}}, Time: at},
			`a\ b\,c,k\=1=v\ 1\,x f\ g="two\nlines" 1704067200012000000`},
	}
	for _, tt := range tests {
		if got := string(appendLine(nil, &tt.p)); got != tt.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestRateTracker(t *testing.T) {
	r := newRateTracker(10 * time.Second)
	t0 := time.Unix(1000, 0)
	r.sample(t0, map[string]uint64{"a": 0, "b": 50})
	if got := r.rate("a"); got != 0 {
		t.Errorf("rate from one sample = %v, want 0", got)
	}
	for i := 1; i <= 10; i++ {
		r.sample(t0.Add(time.Duration(i)*2*time.Second), map[string]uint64{"a": uint64(i) * 200, "b": 50})
	}
	// a grows 100/s throughout; the window keeps about 10s of it.
	if got := r.rate("a"); got != 100 {
		t.Errorf("rate a = %v, want 100", got)
	}
	if got := r.rate("b"); got != 0 {
		t.Errorf("rate b = %v, want 0", got)
	}
	if n := len(r.series["a"]); n > 7 {
		t.Errorf("%d samples kept for a 10s window at 2s", n)
	}
	// A counter that restarts from zero starts a new series; a missing key is forgotten.
	r.sample(t0.Add(22*time.Second), map[string]uint64{"a": 10})
	if got := r.rate("a"); got != 0 {
		t.Errorf("rate after a reset = %v, want 0 until there are two samples", got)
	}
	if _, ok := r.series["b"]; ok {
		t.Error("b was not forgotten")
	}
}

// The rates in status come from counters sampled every rateSampleEvery,
// the first time at once.
func TestSampleRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRateTracker(rateWindow)
		start := time.Now()
		counters := func() map[string]uint64 {
			// 100 a second, in whole seconds of the bubble's clock.
			return map[string]uint64{"x": 100 * uint64(time.Since(start)/time.Second)}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			sampleRates(ctx, r, counters)
		}()
		synctest.Wait()
		r.mu.Lock()
		n := len(r.series["x"])
		r.mu.Unlock()
		if n != 1 {
			t.Errorf("%d samples at the start, want 1", n)
		}
		time.Sleep(rateWindow + rateSampleEvery/2)
		synctest.Wait()
		if got := r.rate("x"); got != 100 {
			t.Errorf("rate %v, want 100/s", got)
		}
		cancel()
		<-done
	})
}

func TestCountFeedEvents(t *testing.T) {
	ev := func(kind string, fields ...sluice.Field) sluice.Point {
		return sluice.Point{Measurement: "feed_events", Tags: []sluice.Tag{{Key: "feed", Value: "x"}, {Key: "kind", Value: kind}},
			Fields: append([]sluice.Field{{Key: "message", Value: sluice.String("m")}}, fields...)}
	}
	got := countFeedEvents([]sluice.Point{
		ev("reconnect"), ev("reconnect"), ev("gap", sluice.Field{Key: "count", Value: sluice.Int(40)}),
		ev("backfill", sluice.Field{Key: "count", Value: sluice.Int(40)}),
		ev("backfill", sluice.Field{Key: "count", Value: sluice.Uint(2)}),
		ev("disconnect"),
		{Measurement: "trades", Tags: []sluice.Tag{{Key: "kind", Value: "reconnect"}}},
	})
	want := feedCounts{reconnects: 2, gaps: 1, backfilled: 42,
		byKind: map[string]uint64{"reconnect": 2, "gap": 1, "backfill": 2, "disconnect": 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The same events, typed, count the same.
	typed := countEvents([]sdk.Event{{Kind: sdk.EventReconnect}, {Kind: sdk.EventReconnect}, {Kind: sdk.EventGap, Count: 40},
		{Kind: sdk.EventBackfill, Count: 40}, {Kind: sdk.EventBackfill, Count: 2}, {Kind: sdk.EventDisconnect}})
	if !reflect.DeepEqual(typed, want) {
		t.Errorf("typed: got %+v, want %+v", typed, want)
	}
}

func TestPlanReload(t *testing.T) {
	feed := func(file string, cfg map[string]any, sinks ...string) config.Feed {
		return config.Feed{Plugin: "synth", Sinks: sinks, Config: cfg, QueueSize: 100, File: file}
	}
	cur := &config.Config{
		HTTP:    config.HTTP{Listen: "127.0.0.1:1"},
		Plugins: map[string]config.Plugin{},
		Sinks:   map[string]config.Sink{"db": {Type: "sqlite"}, "influx": {Type: "influxdb"}},
		Feeds: map[string]config.Feed{
			"same":    feed("a.yaml", map[string]any{"rate": 1}, "db", "influx"),
			"moved":   feed("a.yaml", map[string]any{"rate": 1}, "db"),
			"changed": feed("a.yaml", map[string]any{"rate": 1}, "db"),
			"resink":  feed("a.yaml", nil, "db"),
			"gone":    feed("a.yaml", nil, "db"),
			"broken":  feed("a.yaml", nil, "db"),
		},
	}
	next := &config.Config{
		HTTP:    config.HTTP{Listen: "127.0.0.1:2"},
		Plugins: map[string]config.Plugin{},
		Sinks:   map[string]config.Sink{"db": {Type: "sqlite", Options: &sqlite.Config{Path: "other.db"}}, "extra": {Type: "sqlite"}},
		Feeds: map[string]config.Feed{
			"same":    feed("a.yaml", map[string]any{"rate": 1}, "influx", "db"),
			"moved":   feed("b.yaml", map[string]any{"rate": 1}, "db"),
			"changed": feed("a.yaml", map[string]any{"rate": 2}, "db"),
			"resink":  feed("a.yaml", nil, "db", "influx"),
			"broken":  feed("a.yaml", nil, "db"),
			"new":     feed("c.yaml", nil, "db"),
		},
	}
	running := map[string]bool{"db": true, "influx": true}
	p := planReload(cur, next, map[string]bool{"broken": true}, running)
	if len(p.errs) != 0 {
		t.Fatalf("errors: %v", p.errs)
	}
	check := func(what string, got []string, want string) {
		if strings.Join(got, " ") != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("add", p.add, "new")
	check("remove", p.remove, "gone")
	check("restart", p.restart, "broken resink")
	check("reconfigure", p.reconfigure, "changed") // only its plugin config changed
	check("restart needed", p.restartNeeded, "http sinks.influx (removed) sinks.db sinks.extra (new)")

	// A pin change restarts the feeds of that plugin.
	pinned := *next
	pinned.Plugins = map[string]config.Plugin{"synth": {SHA256: "ab"}}
	if p := planReload(next, &pinned, nil, running); len(p.restart) != len(next.Feeds) {
		t.Errorf("pin change restarts %v, want every synth feed", p.restart)
	}

	// A feed routed to a sink the agent does not run rejects the reload.
	bad := *next
	bad.Feeds = map[string]config.Feed{"new": feed("c.yaml", nil, "extra")}
	p = planReload(cur, &bad, nil, running)
	if len(p.errs) != 1 || !strings.Contains(p.errs[0].Error(), `c.yaml: feeds.new.sinks[0]: sink "extra" is not running`) {
		t.Errorf("errs = %v", p.errs)
	}
}

func TestHungSinks(t *testing.T) {
	now := time.Unix(1000, 0)
	sinks := []SinkStatus{
		{OutputStatus: pipeline.OutputStatus{Name: "idle"}},
		{OutputStatus: pipeline.OutputStatus{Name: "retrying", State: pipeline.SinkRetrying, BufferedPoints: 900}},
		{OutputStatus: pipeline.OutputStatus{Name: "writing", WriteStarted: now.Add(-3 * time.Second)}},
		{OutputStatus: pipeline.OutputStatus{Name: "hung", WriteStarted: now.Add(-5 * time.Second)}},
	}
	if got := hungSinks(sinks, now, 4*time.Second); len(got) != 1 || got[0] != "hung" {
		t.Fatalf("hung sinks = %v, want only the one inside a write for longer than the bound", got)
	}
}

type fakeSink struct{ err error }

func (s *fakeSink) Open(context.Context) error                          { return nil }
func (s *fakeSink) Declare(context.Context, []sluice.Measurement) error { return nil }
func (s *fakeSink) Write(context.Context, []sluice.Point) error         { return s.err }
func (s *fakeSink) Close() error                                        { return nil }

type recordObserver struct{ got []float64 }

func (o *recordObserver) Observe(v float64) { o.got = append(o.got, v) }

func TestObservedSinkMeasuresLagOfCommittedBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now() // in the bubble, the time Write sees too
		inner := &fakeSink{}
		obs := &recordObserver{}
		s := newObservedSink(inner, obs)
		batch := []sluice.Point{{Time: now.Add(-3 * time.Second)}, {Time: now.Add(-500 * time.Millisecond)}, {Time: now.Add(-time.Second)}}
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if len(obs.got) != 3 || obs.got[0] != 3 || obs.got[1] != 0.5 || obs.got[2] != 1 {
			t.Errorf("observed %v, want [3 0.5 1]", obs.got)
		}
		if s.LastLag() != 500*time.Millisecond {
			t.Errorf("last lag %v, want the newest point's 500ms", s.LastLag())
		}
		inner.err = errors.New("connection refused")
		if err := s.Write(context.Background(), batch); err == nil {
			t.Fatal("error not passed on")
		}
		if len(obs.got) != 3 {
			t.Error("a failed write was observed")
		}
		inner.err = &sinks.RejectedError{Rejected: 1, Err: errors.New("partial write")}
		s.Write(context.Background(), batch)
		if len(obs.got) != 6 {
			t.Error("a partial write was not observed")
		}
	})
}
