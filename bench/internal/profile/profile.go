// Package profile lets the benchmark's profiling builds of the agent and
// the plugin write pprof profiles of a window of their run, named by the
// environment, without touching the real commands.
package profile

import (
	"os"
	"runtime/pprof"
	"strings"
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
//
// A plugin does not see the agent's environment (the agent passes a plugin
// only the variables it needs), so when EnvPrefix is unset Start reads
// the two settings from the file <executable>.profile, one NAME=value a
// line, which the harness writes for each step.
func Start(who string) (stop func()) {
	prefix, dur := os.Getenv(EnvPrefix), os.Getenv(EnvFor)
	if prefix == "" {
		prefix, dur = fromFile()
	}
	if prefix == "" {
		return func() {}
	}
	d, err := time.ParseDuration(dur)
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

// fromFile reads EnvPrefix and EnvFor from <executable>.profile.
func fromFile() (prefix, dur string) {
	exe, err := os.Executable()
	if err != nil {
		return "", ""
	}
	b, err := os.ReadFile(exe + ".profile")
	if err != nil {
		return "", ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case EnvPrefix:
			prefix = v
		case EnvFor:
			dur = v
		}
	}
	return prefix, dur
}

// WriteFile writes the settings Start reads for the executable exe.
func WriteFile(exe, prefix string, d time.Duration) error {
	return os.WriteFile(exe+".profile", []byte(EnvPrefix+"="+prefix+"\n"+EnvFor+"="+d.String()+"\n"), 0o644)
}
