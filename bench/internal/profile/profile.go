// Package profile lets the benchmark's profiling builds of the agent and
// the plugin write pprof profiles of a window of their run, named by the
// environment, without touching the real commands.
package profile

import (
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

// Env names. They do not start with SLUICE_: the agent rejects unknown
// SLUICE_* variables. The plugin inherits them from the agent.
const (
	EnvPrefix = "SLUICEBENCH_PROFILE"     // path prefix of the profiles
	EnvFor    = "SLUICEBENCH_PROFILE_FOR" // how long to profile (Go duration)
)

// Start begins a CPU profile when EnvPrefix is set, and after EnvFor
// (default 10s) writes <prefix>-<who>.cpu.pprof and the allocation profile
// <prefix>-<who>.allocs.pprof. It returns at once, with a function that
// ends the profile early (at exit); calling it again does nothing.
func Start(who string) (stop func()) {
	prefix := os.Getenv(EnvPrefix)
	if prefix == "" {
		return func() {}
	}
	d, err := time.ParseDuration(os.Getenv(EnvFor))
	if err != nil || d <= 0 {
		d = 10 * time.Second
	}
	f, err := os.Create(prefix + "-" + who + ".cpu.pprof")
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			if a, err := os.Create(prefix + "-" + who + ".allocs.pprof"); err == nil {
				pprof.Lookup("allocs").WriteTo(a, 0)
				a.Close()
			}
		})
	}
	time.AfterFunc(d, stop)
	return stop
}
