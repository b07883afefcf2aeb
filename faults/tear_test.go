package faults

// Tearing the disk buffer's tail while the agent is down, as a crash in
// the middle of a write (or power loss before the page cache reached the
// disk) leaves it. The record layout is agent/wal's (record.go):
// [u32 length][u32 crc][u64 index][payload], little-endian, in segment
// files named <first index>.wal.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const walHeader = 16

// tear is one way of damaging the tail.
type tear int

const (
	tearCut     tear = iota // the last record cut short, mid-payload
	tearGarbage             // bytes appended that are no record
	tearFlip                // a byte of the last record's payload changed
	// The log cut short in the middle of the record positions.json
	// points at: power loss after the snapshot was fsynced and before
	// the log's group commit (fsync_interval) reached that record.
	tearPowerLoss
	tearKinds
)

func (k tear) String() string {
	return [...]string{"cut mid-record", "garbage appended", "last record corrupted", "power loss"}[k]
}

// tearTail damages the last segment in logDir and says what it did. For
// tearPowerLoss it cuts the log inside one of the newest quarter of the
// segment's records (at least the last), taking the records after it too:
// the records a lagging sink has not written, which power loss before
// the group commit can take from its log while the other sinks' logs
// keep theirs.
func tearTail(t *testing.T, logDir string, kind tear, rng *rand.Rand) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(logDir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no buffer segments in %s (%v)", logDir, err)
	}
	slices.Sort(segs)
	path := segs[len(segs)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Record boundaries; the agent was killed, not the disk, so the file
	// holds whole records only.
	var starts []int
	off := 0
	for off+walHeader <= len(b) {
		n := walHeader + int(binary.LittleEndian.Uint32(b[off:]))
		if off+n > len(b) {
			break
		}
		starts = append(starts, off)
		off += n
	}
	if off != len(b) {
		t.Fatalf("%s: %d bytes after the last whole record before the test touched it", path, len(b)-off)
	}
	if len(starts) == 0 {
		kind = tearGarbage // an empty segment has no record to cut
	}
	name := filepath.Base(path)
	switch kind {
	case tearPowerLoss:
		i := len(starts) - 1 - rng.IntN(len(starts)/4+1)
		at := starts[i]
		end := len(b)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		keep := at + 1 + rng.IntN(end-at-1)
		if err := os.Truncate(path, int64(keep)); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: power loss: cut inside record %d, %d of %d records after it lost with it",
			name, recordIndex(b, at), len(starts)-i-1, len(starts))
	case tearCut:
		last := starts[len(starts)-1]
		keep := last + 1 + rng.IntN(len(b)-last-1)
		if err := os.Truncate(path, int64(keep)); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: last record (at %d, %d bytes) cut to %d bytes", name, last, len(b)-last, keep-last)
	case tearFlip:
		last := starts[len(starts)-1]
		at := last + walHeader + rng.IntN(len(b)-last-walHeader)
		b[at] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: byte %d of the last record (at %d) flipped", name, at-last, last)
	default:
		junk := make([]byte, 1+rng.IntN(300))
		for i := range junk {
			junk[i] = byte(rng.Uint32())
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(junk); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: %d bytes of garbage appended after %d records", name, len(junk), len(starts))
	}
}

func recordIndex(b []byte, at int) uint64 { return binary.LittleEndian.Uint64(b[at+8:]) }
