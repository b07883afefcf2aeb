package simclock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDriver(t *testing.T) {
	var d Driver
	d.Stop() // the zero Driver is stopped
	var moved atomic.Int64
	advance := func(dt time.Duration) { moved.Add(int64(dt)) }
	d.Start(advance)
	d.Start(advance) // no second goroutine
	deadline := time.Now().Add(10 * time.Second)
	for moved.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the clock did not move within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	d.Stop()
	after := moved.Load()
	time.Sleep(5 * step)
	if got := moved.Load(); got != after {
		t.Errorf("the clock moved by %s after Stop", time.Duration(got-after))
	}
	d.Stop()
	d.Start(advance) // and again, after a stop
	d.Stop()
}

func TestStopWaitsForAnAdvance(t *testing.T) {
	var d Driver
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	d.Start(func(time.Duration) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	<-entered
	stopped := make(chan struct{})
	go func() {
		d.Stop()
		close(stopped)
	}()
	// A correct Stop cannot return while advance runs; the wait only
	// bounds how long a broken one takes to show.
	select {
	case <-stopped:
		t.Fatal("Stop returned while advance was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
}
