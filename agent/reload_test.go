package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// A burst of changes in feeds_dir is one reload, reloadDebounce after
// the last change; files that are not feed files (editor swap files,
// other extensions, a mode change) reload nothing; a ConfigMap's ..data
// swap does; the watcher ends once the agent is stopping.
func TestFeedsDirChangesAreDebounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		events, errs := make(chan fsnotify.Event), make(chan error)
		var mu sync.Mutex
		var reloads []time.Duration
		var stopping bool
		reload := func(context.Context) (ReloadResult, error) {
			mu.Lock()
			defer mu.Unlock()
			reloads = append(reloads, time.Since(start))
			if stopping {
				return ReloadResult{}, ErrStopping
			}
			return ReloadResult{}, nil
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			debounceReloads(context.Background(), "/feeds.d", events, errs, reload, slog.New(slog.DiscardHandler))
		}()
		// A deploy tool's burst: a write every 100ms for a second.
		for range 10 {
			events <- fsnotify.Event{Name: "/feeds.d/a.yaml", Op: fsnotify.Write}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // t = 3s
		for _, ev := range []fsnotify.Event{
			{Name: "/feeds.d/.a.yaml.swp", Op: fsnotify.Create},
			{Name: "/feeds.d/a.yaml", Op: fsnotify.Chmod},
			{Name: "/feeds.d/notes.txt", Op: fsnotify.Write},
		} {
			events <- ev
		}
		errs <- fsnotify.ErrEventOverflow // logged, nothing more
		time.Sleep(2 * time.Second)       // t = 5s
		events <- fsnotify.Event{Name: "/feeds.d/..data", Op: fsnotify.Create}
		time.Sleep(2 * time.Second) // t = 7s
		mu.Lock()
		stopping = true
		mu.Unlock()
		events <- fsnotify.Event{Name: "/feeds.d/b.yml", Op: fsnotify.Remove}
		<-done // the watcher ends: the agent is stopping

		// The burst's last write at 0.9s, the swap at 5s, the removal at 7s.
		want := []time.Duration{1400 * time.Millisecond, 5500 * time.Millisecond, 7500 * time.Millisecond}
		if !slices.Equal(reloads, want) {
			t.Errorf("reloads at %v, want %v", reloads, want)
		}
	})
}
