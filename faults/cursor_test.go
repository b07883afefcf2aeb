package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// 10. Damaged cursor files at startup, as a power loss can leave them on
// some filesystems: the agent is killed, one sink's cursor file is
// emptied and the other's garbled, and the agent started again. It must
// run (not exit, which under systemd ends in a failed unit), say what it
// did, and every trade must land exactly once: each sink starts again
// from the oldest entry its log holds, and what it writes again lands on
// itself.
func TestDamagedCursorFiles(t *testing.T) {
	t.Parallel()
	r := newRig(t, "10 damaged cursor files", setup{second: true})
	r.checkAll()
	r.begin()
	for i := range pick(2, 6) {
		r.a.sleep(r.between(500*time.Millisecond, 2500*time.Millisecond))
		r.a.kill()
		for sink, content := range map[string][]byte{
			"sqlite": {},
			"second": []byte(strings.Repeat("\x5a", 13) + "not a cursor"),
		} {
			path := filepath.Join(r.a.dir, "buffer", "sinks", sink, "cursor")
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("cursor of sink %s: %v", sink, err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("damage %d: cursor of sqlite emptied, cursor of second garbled", i+1)
		r.a.start()
		r.a.waitRunning()
	}
	if got := strings.Count(r.a.logs(), "cursor is unreadable"); got != 2*pick(2, 6) {
		t.Errorf("the agent reported %d unreadable cursors; the test damaged %d", got, 2*pick(2, 6))
	}
	r.finish()
}
