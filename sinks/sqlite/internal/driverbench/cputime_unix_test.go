//go:build unix

package driverbench

import "syscall"

// cpuTime is the process's user+system CPU time in ns. Benchmarks report
// it per point besides wall time, which on a shared machine mostly
// measures the neighbours.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
