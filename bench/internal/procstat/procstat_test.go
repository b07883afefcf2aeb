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
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
