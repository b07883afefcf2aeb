package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/sinks"
)

// A plugin that dies is restarted after a backoff that doubles up to
// restart.max (each wait drawn from the upper half of its nominal
// delay), whether it died at once or after a short run; once it has run
// for reset_after, the backoff starts again from restart.initial. Each
// restart resumes from the last position that reached the buffer. Time
// is synctest's, so the waits are exact.
func TestFeedRestartsWithBackoffAndResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// How long each process runs before it dies: the third runs a
		// while (less than reset_after), the seventh past reset_after.
		runs := []time.Duration{0, 0, 10 * time.Second, 0, 0, 0, 2 * time.Minute, 0, 0}
		l := &fakeLauncher{plugins: map[string]*fakePlugin{"p": {
			stream: func(ctx context.Context, p *fakeProc, opts sdk.StreamOptions, fn sdk.BatchHandler) error {
				b := &sdk.Batch{Batch: sluice.Batch{
					Points:   []sluice.Point{{Measurement: "m", Fields: []sluice.Field{{Key: "seq", Value: sluice.Int(int64(p.n))}}, Time: time.Now()}},
					Position: sluice.Position(fmt.Sprint(p.n)),
				}}
				if err := fn(b, 0, nil); err != nil {
					return err
				}
				return failAfter(runs[min(p.n, len(runs)-1)], errors.New("boom"))(ctx, p, opts, fn)
			},
		}}}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{}})
		f := testFeed(env, "f", "p", nil)
		stop, _ := runFeed(t, f)
		for len(l.procs("p")) < len(runs) {
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		if st := f.status(); st.State != FeedBackingOff || st.LastError != "boom" {
			t.Errorf("after a crash: state %s, last error %q; want backing_off, boom", st.State, st.LastError)
		}
		stop()

		// Nominal delays (initial 1s, max 8s): 1, 2, 4 (the 10s run
		// did not reset), 8, 8, 8; after the 2m run, 1 and 2 again.
		nominal := []time.Duration{1, 2, 4, 8, 8, 8, 1, 2}
		procs := l.procs("p")
		for i, n := range nominal {
			n *= time.Second
			died := procs[i].at.Add(runs[i])
			if wait := procs[i+1].at.Sub(died); wait < n/2 || wait > n {
				t.Errorf("restart %d came %v after the crash, want within [%v, %v]", i+1, wait, n/2, n)
			}
		}
		for i, p := range procs {
			if !p.wasKilled() {
				t.Errorf("process %d was not killed after its stream ended", i)
			}
			var want sluice.Position
			if i > 0 {
				want = sluice.Position(fmt.Sprint(i - 1))
			}
			if s := p.streamed(); len(s) != 1 || string(s[0].Resume) != string(want) {
				t.Errorf("process %d resumed from %q, want %q (the last buffered position)", i, s[0].Resume, want)
			}
		}
		// Every crash counts as a restart, the last one's pending when
		// the feed stopped.
		st := f.status()
		if st.State != FeedStopped || st.Restarts != uint64(len(runs)) || st.Points != uint64(len(runs)) {
			t.Errorf("status %+v; want stopped, %d restarts, %d points", st, len(runs), len(runs))
		}
	})
}

// Failures a restart cannot fix stop the feed in a failed state, with
// the reason, and it is not launched again; others are retried.
func TestFeedFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		noPlugin  bool
		plugin    fakePlugin
		other     []sluice.Measurement // claimed by another feed first
		refuse    error                // the sink refuses the feed's key
		state     FeedState            // once settled
		permanent bool
		err       string // in LastError
	}{
		{name: "plugin missing", noPlugin: true, state: FeedFailed, permanent: true,
			err: `plugin "p" not found in the plugin directory`},
		{name: "pin mismatch", plugin: fakePlugin{launch: func(int) error {
			return &host.ChecksumError{Path: "/x/sluice-source-p", Want: "aa", Got: "bb"}
		}}, state: FeedFailed, permanent: true, err: "does not match its pin"},
		{name: "untrusted", plugin: fakePlugin{launch: func(int) error {
			return fmt.Errorf("launch: %w", &host.TrustError{Path: "/x", What: "plugin directory", Problem: "writable by others", Fix: "chmod o-w /x"})
		}}, state: FeedFailed, permanent: true, err: "chmod o-w /x"},
		{name: "launch fails", plugin: fakePlugin{launch: func(int) error { return boom }},
			state: FeedBackingOff, err: "boom"},
		{name: "config rejected", plugin: fakePlugin{
			configure: func(*fakeProc, sdk.ConfigureRequest, bool) ([]sluice.Measurement, error) {
				return nil, sdk.ConfigErrors{{Key: "symbols", Msg: "must list at least one symbol"}}
			}}, state: FeedFailedConfig, permanent: true, err: "symbols: must list at least one symbol"},
		{name: "configure fails", plugin: fakePlugin{
			configure: func(*fakeProc, sdk.ConfigureRequest, bool) ([]sluice.Measurement, error) { return nil, boom }},
			state: FeedBackingOff, err: "boom"},
		{name: "source permanent", plugin: fakePlugin{stream: failAfter(0, sdk.Permanent(errors.New("login refused")))},
			state: FeedFailed, permanent: true, err: "login refused"},
		{name: "key conflict", other: []sluice.Measurement{{Name: "m", Unique: []string{"id"}}},
			state: FeedFailedConfig, permanent: true, err: `feed other (/other.yaml) declares it as (id)`},
		{name: "sink refuses key", refuse: &sinks.RefusedError{Measurement: "m", Unique: []string{"seq"}, Err: errors.New("UNIQUE constraint failed"), Hint: "see the rows"},
			state: FeedFailed, permanent: true, err: "UNIQUE constraint failed"},
		{name: "message too large", plugin: fakePlugin{stream: failAfter(0, fmt.Errorf("%w: 20000000 > 16777216", sdk.ErrMessageTooLarge))},
			state: FeedBackingOff, err: "limits.max_plugin_message_bytes is 16777216: raise it"},
		{name: "stream ends", plugin: fakePlugin{stream: failAfter(0, nil)},
			state: FeedBackingOff, err: "plugin ended its stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &fakeLauncher{plugins: map[string]*fakePlugin{"p": &tt.plugin}}
				env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{refuse: tt.refuse}})
				if tt.other != nil {
					if _, err := env.keys.claim("other", "/other.yaml", tt.other); err != nil {
						t.Fatal(err)
					}
				}
				f := testFeed(env, "f", "p", nil)
				if tt.noPlugin {
					f.plugins = func() map[string]host.Binary { return nil }
				}
				_, ended := runFeed(t, f)
				time.Sleep(30 * time.Second) // many restarts' worth
				synctest.Wait()
				st := f.status()
				if st.State != tt.state || !strings.Contains(st.LastError, tt.err) {
					t.Errorf("state %s, last error %q; want %s, %q", st.State, st.LastError, tt.state, tt.err)
				}
				if ended() != tt.permanent {
					t.Errorf("supervisor ended: %v, want %v", ended(), tt.permanent)
				}
				tries := l.tried("p")
				switch {
				case tt.noPlugin && tries != 0:
					t.Errorf("launched %d times without a plugin", tries)
				case tt.permanent && !tt.noPlugin && (tries != 1 || st.Restarts != 0):
					t.Errorf("launched %d times, %d restarts; want once, none", tries, st.Restarts)
				case !tt.permanent && (tries < 3 || st.Restarts != uint64(tries)):
					t.Errorf("launched %d times in 30s, %d restarts counted; want retries, each counted", tries, st.Restarts)
				}
				for i, p := range l.procs("p") {
					if !p.wasKilled() {
						t.Errorf("process %d left running", i)
					}
				}
			})
		})
	}
}

// A conflict's claim is undone when a sink refuses the key, so the
// registry does not keep a key no sink took; a transient declare error
// keeps it for the retry.
func TestFeedSinkRefusalUndoesTheClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{plugins: map[string]*fakePlugin{"p": {}}}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{refuse: &sinks.RefusedError{Measurement: "m", Err: errors.New("no")}}})
		f := testFeed(env, "f", "p", nil)
		runFeed(t, f)
		synctest.Wait()
		if got := env.keys.holding("f"); len(got) != 0 {
			t.Errorf("feed f still holds %v after its sink refused the key", got)
		}
	})
}

// A plugin config change goes to the running plugin when it can take it
// (sdk.CapReconfigure, the same environment variables); the process and
// its counters stay, and a later restart starts with the new config. A
// plugin without the capability, one not running, or a config needing
// other variables asks for a restart; a plugin rejecting the config
// keeps the old one.
func TestFeedReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{plugins: map[string]*fakePlugin{
			"live": {caps: []string{sdk.CapReconfigure},
				configure: func(_ *fakeProc, req sdk.ConfigureRequest, _ bool) ([]sluice.Measurement, error) {
					if strings.Contains(string(req.Config), "bad") {
						return nil, sdk.ConfigErrors{{Key: "symbols", Msg: "unknown symbol bad"}}
					}
					return []sluice.Measurement{fakeMeasurement}, nil
				}},
			"plain": {},
		}}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{}})
		live := testFeed(env, "live", "live", map[string]any{"symbols": []any{"BTC"}})
		plain := testFeed(env, "plain", "plain", map[string]any{"symbols": []any{"BTC"}})
		if err := live.reconfigure(t.Context(), map[string]any{"symbols": []any{"ETH"}}); !errors.Is(err, sdk.ErrRestartNeeded) {
			t.Errorf("reconfigure before the plugin runs: %v, want ErrRestartNeeded", err)
		}
		runFeed(t, live)
		runFeed(t, plain)
		time.Sleep(5 * time.Second)
		synctest.Wait()

		if err := live.reconfigure(t.Context(), map[string]any{"symbols": []any{"ETH"}}); err != nil {
			t.Fatalf("reconfigure: %v", err)
		}
		p := l.procs("live")
		if len(p) != 1 || strings.Join(p[0].configured(), " ") != `{"symbols":["BTC"]} {"symbols":["ETH"]}` {
			t.Fatalf("live plugin processes %d, configs %v; want one, configured with BTC then ETH", len(p), p[0].configured())
		}
		err := live.reconfigure(t.Context(), map[string]any{"symbols": []any{"bad"}})
		var ces sdk.ConfigErrors
		if !errors.As(err, &ces) {
			t.Errorf("a rejected config: %v, want the plugin's ConfigErrors", err)
		}
		if err := live.reconfigure(t.Context(), map[string]any{"key": "${env:WS_KEY}"}); !errors.Is(err, sdk.ErrRestartNeeded) {
			t.Errorf("a config needing another variable: %v, want ErrRestartNeeded", err)
		}
		if err := plain.reconfigure(t.Context(), map[string]any{"symbols": []any{"ETH"}}); !errors.Is(err, sdk.ErrRestartNeeded) {
			t.Errorf("a plugin without the capability: %v, want ErrRestartNeeded", err)
		}
		if got := len(l.procs("plain")[0].configured()); got != 1 {
			t.Errorf("a plugin without the capability was sent the config anyway (%d configures)", got)
		}

		// The process dies: the next one starts with the config taken in place.
		l.procs("live")[0].crash(errors.New("boom"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		p = l.procs("live")
		if len(p) != 2 || strings.Join(p[1].configured(), " ") != `{"symbols":["ETH"]}` {
			t.Errorf("after a crash: %d processes, the new one configured with %v; want ETH", len(p), p[len(p)-1].configured())
		}
		if st := live.status(); st.State != FeedRunning || st.Restarts != 1 {
			t.Errorf("after a crash: state %s, %d restarts; want running, 1", st.State, st.Restarts)
		}
	})
}

// What the plugin is given of the agent's environment is the variables
// its config references, and their values are masked in status from
// then on.
func TestFeedEnvironmentAndSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{plugins: map[string]*fakePlugin{"p": {
			stream: func(ctx context.Context, p *fakeProc, _ sdk.StreamOptions, _ sdk.BatchHandler) error {
				return errors.New("server said: bad key canary-secret-1")
			}}}}
		env := testFeedEnv(t, l, map[string]sinks.Sink{"db": &declSink{}})
		f := testFeed(env, "f", "p", map[string]any{"url": "wss://x/?k=${env:WS_KEY}"})
		runFeed(t, f)
		synctest.Wait()
		p := l.procs("p")[0]
		if got := strings.Join(p.opts.Env, " "); got != "PATH=/usr/bin WS_KEY=canary-secret-1" {
			t.Errorf("plugin environment %q", got)
		}
		var cfg map[string]any
		if err := json.Unmarshal([]byte(p.configured()[0]), &cfg); err != nil || cfg["url"] != "wss://x/?k=${env:WS_KEY}" {
			t.Errorf("plugin config %v (%v): the reference is the plugin's to resolve", cfg, err)
		}
		if st := f.status(); strings.Contains(st.LastError, "canary-secret-1") || !strings.Contains(st.LastError, "server said") {
			t.Errorf("last error %q: the secret shows, or the error is lost", st.LastError)
		}
	})
}
