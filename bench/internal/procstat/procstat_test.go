package procstat

import (
	"os"
	"testing"
)

// TestSelf reads this process: CPU time moves with work done, and the
// resident memory is positive and no more than its peak.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	c0, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for c1 := c0; c1 < c0+0.05; c1, _ = CPUSeconds(pid) {
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	rss, err := RSSMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	peak, err := PeakRSSMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Errorf("rss %.1f MiB, peak %.1f MiB", rss, peak)
	}
	files, err := OpenFiles(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if more, _ := OpenFiles(pid); more != files+1 {
		t.Errorf("open files %d, then %d after opening one more", files, more)
	}
	f.Close()
	if n, err := Threads(pid); err != nil || n < 1 {
		t.Errorf("threads %d, %v", n, err)
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// TestReferenced clears this process's referenced pages, touches a fresh
// 32 MiB buffer and a resident one, and reads the working set: it holds
// what was touched and leaves out what was resident but not touched.
func TestReferenced(t *testing.T) {
	pid := os.Getpid()
	const mib = 32
	idle := make([]byte, mib<<20)
	for i := range idle {
		idle[i] = 1 // resident, then left alone
	}
	if err := ClearReferenced(pid); err != nil {
		t.Fatal(err)
	}
	before, err := ReferencedMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	busy := make([]byte, mib<<20)
	for i := 0; i < len(busy); i += 4096 {
		busy[i] = 1
	}
	after, err := ReferencedMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := RSSMB(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < mib {
		t.Errorf("touching %d MiB moved the working set from %.1f to %.1f MiB", mib, before, after)
	}
	if rss-after < mib-1 {
		t.Errorf("working set %.1f MiB of %.1f resident: the %d MiB left alone counted as touched", after, rss, mib)
	}
	_ = idle[0]
}
