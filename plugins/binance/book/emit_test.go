package book

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/wire"
)

// TestReplayEmitsOnlyTopChanges plays the recorded sessions through
// books published as the plugin does (the top 20 levels every second,
// when they changed): a publication skipped because ChangedWithin said
// the top was as published must indeed show the same levels, and the
// log says how many a publication on every change would have added.
func TestReplayEmitsOnlyTopChanges(t *testing.T) {
	const depth, every = 20, time.Second
	for _, path := range fixture.SessionFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".replay.jsonl")
		t.Run(name, func(t *testing.T) {
			m, lines := fixture.ReadSession(t, path)
			p := wire.NewParser(m)
			type state struct {
				b         *Book
				published string // the top levels last published
				emittedID int64  // the update id last published
			}
			books := map[string]*state{}
			get := func(sym string) *state {
				if books[sym] == nil {
					books[sym] = &state{b: New(m, sym)}
				}
				return books[sym]
			}
			var next time.Time
			var onChange, onTop int
			publish := func() {
				for sym, s := range books {
					if !s.b.Synced() {
						continue
					}
					now := top(s.b, depth)
					if s.b.LastUpdateID() != s.emittedID {
						onChange++
					}
					if !s.b.ChangedWithin(depth) {
						if now != s.published {
							t.Fatalf("%s at %d: top %d changed but not reported:\n%s\n%s", sym, s.b.LastUpdateID(), depth, s.published, now)
						}
						continue
					}
					onTop++
					s.published, s.emittedID = now, s.b.LastUpdateID()
					s.b.ClearChanged()
				}
			}
			for i, l := range lines {
				at := l.Received()
				if next.IsZero() {
					next = at.Add(every)
				}
				for !at.Before(next) {
					publish()
					next = next.Add(every)
				}
				switch l.Src {
				case "rest":
					u, err := url.Parse(l.URL)
					if err != nil {
						t.Fatal(err)
					}
					s, err := wire.ParseDepthSnapshot([]byte(l.Raw))
					if err != nil {
						t.Fatal(err)
					}
					if err := get(u.Query().Get("symbol")).b.Snapshot(&s); err != nil {
						t.Fatalf("line %d: %v", i+1, err)
					}
				case "ws":
					_, ev, err := p.Parse([]byte(l.Raw), at, nil)
					if err != nil || ev.Kind != wire.EventDepthUpdate {
						continue
					}
					if err := get(ev.Symbol).b.Apply(&ev.Depth); err != nil {
						t.Fatalf("line %d: %v", i+1, err)
					}
				}
			}
			if onChange == 0 {
				t.Fatal("no book was published: the test checked nothing")
			}
			t.Logf("%s: %d publications of the top %d on every change, %d when the top changed (%.0f %% fewer)",
				name, onChange, depth, onTop, 100*(1-float64(onTop)/float64(onChange)))
		})
	}
}
