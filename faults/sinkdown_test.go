package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	sinkDownBound   = 256 << 10
	sinkDownSegment = 64 << 10 // what the agent gives a sink of that bound: a quarter, at least 64 KiB
)

// 9. A sink that is down for the whole run, under each when_full policy:
// InfluxDB is stopped before the agent starts, so the sink never writes
// once, and its share of the buffer is small. All along, its part of the
// buffer on disk, as the filesystem sees it, must stay within its bound
// plus one segment. SQLite, on the same feed, gets everything. InfluxDB
// comes back at the end: under block it then gets everything (while the
// feed waited the plugin's queue dropped, and the exchange backfills);
// under drop_oldest and drop_newest it misses exactly the points counted
// as dropped.
//
// The short run covers drop_oldest (the policy that must move the cursor
// of a sink that never wrote); the full run all three.
func TestSinkDownAllRun(t *testing.T) {
	t.Parallel()
	for _, policy := range pick([]string{"drop_oldest"}, []string{"block", "drop_oldest", "drop_newest"}) {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, "9 sink down all run, "+policy, setup{
				influx:       true,
				influxSink:   fmt.Sprintf("max_buffer_bytes: %d, when_full: %s", sinkDownBound, policy),
				queueSize:    1000,
				segmentBytes: sinkDownSegment,
			})
			r.checks = []sinkCheck{
				{store: r.sqlite},
				{store: influxStore{name: "influx", srv: r.influx}, drops: policy != "block", ref: r.sqlite},
			}
			r.influx.Stop()
			r.begin()
			dir := filepath.Join(r.a.dir, "buffer", "sinks", "influx")
			var peak int64
			until := time.Now().Add(pick(12*time.Second, 40*time.Second))
			for time.Now().Before(until) {
				peak = max(peak, dirBytes(t, dir))
				r.a.sleep(100 * time.Millisecond)
			}
			s, _ := sinkStatus(r.a.last, "influx")
			t.Logf("influx down since the start: %d bytes on disk (peak %d, bound %d + segment %d), %d bytes unwritten, dropped %v, written %d",
				dirBytes(t, dir), peak, sinkDownBound, sinkDownSegment, s.BufferedBytes, s.Dropped, s.Written)
			if peak > sinkDownBound+sinkDownSegment {
				t.Errorf("the down sink's buffer reached %d bytes on disk; bound %d + one segment %d", peak, sinkDownBound, sinkDownSegment)
			}
			if s.Written != 0 {
				t.Errorf("the down sink wrote %d points", s.Written)
			}
			if policy != "block" && s.Dropped["buffer_full"] == 0 {
				t.Errorf("%s: nothing was dropped; the run never filled the sink's share", policy)
			}
			// Under block the feed waits once the next batch does not fit:
			// what waits is within one batch (up to 500 points) of the bound.
			if policy == "block" && (s.BufferedBytes < sinkDownBound/2 || feedStatus(r.a.last).LastBatchAge < 2) {
				t.Errorf("block: %d bytes buffered, last batch %.1fs ago; the run never filled the sink's share (%d) and held the feed",
					s.BufferedBytes, feedStatus(r.a.last).LastBatchAge, sinkDownBound)
			}
			r.influx.Restart()
			r.finish()
		})
	}
}

// dirBytes is the bytes of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
