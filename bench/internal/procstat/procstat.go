// Package procstat reads what a benchmark measures of a process from
// /proc: CPU time used and resident memory, and the machine's load.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux this runs on (getconf CLK_TCK).
const clockTicks = 100

// CPUSeconds is the user+system CPU time a process has used so far, from
// /proc/<pid>/stat (fields 14 and 15, after the parenthesised command).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(u+s) / clockTicks, nil
}

// SelfCPUSeconds is this process's CPU time.
func SelfCPUSeconds() float64 {
	s, _ := CPUSeconds(os.Getpid())
	return s
}

// PeakRSSMB is VmHWM from /proc/<pid>/status: the most resident memory
// the process has had, in MiB.
func PeakRSSMB(pid int) (float64, error) { return statusMB(pid, "VmHWM:") }

// RSSMB is VmRSS: the process's resident memory now, in MiB.
func RSSMB(pid int) (float64, error) { return statusMB(pid, "VmRSS:") }

// AnonRSSMB is RssAnon: the resident memory the process allocated
// itself (heap, stacks), without the pages of its executable, in MiB.
func AnonRSSMB(pid int) (float64, error) { return statusMB(pid, "RssAnon:") }

// ClearReferenced marks every page of the process as not referenced
// (writes 1 to /proc/<pid>/clear_refs), so that ReferencedMB later counts
// only what the process touched since: its working set.
func ClearReferenced(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("1"), 0)
}

// ReferencedMB is Referenced from /proc/<pid>/smaps_rollup in MiB: the
// resident pages touched since ClearReferenced, counted as they are
// mapped (4 KiB pages; a file's 2 MiB page mapped whole counts whole).
// RSS counts more: the kernel maps an executable's pages 64 KiB at a time
// (fault-around) and they stay mapped after start-up has run them once.
func ReferencedMB(pid int) (float64, error) {
	return fieldMB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Referenced:")
}

func statusMB(pid int, field string) (float64, error) {
	return fieldMB(fmt.Sprintf("/proc/%d/status", pid), field)
}

// fieldMB reads a "Name:   1234 kB" line of a /proc file, in MiB.
func fieldMB(path, field string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s %q", path, field, rest)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}

// LoadAvg is the 1-minute load average, or -1 when it cannot be read.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// OpenFiles is the number of file descriptors the process holds.
func OpenFiles(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// Threads is the number of the process's threads (Threads in
// /proc/<pid>/status).
func Threads(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no Threads", pid)
}
