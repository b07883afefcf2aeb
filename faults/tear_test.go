package faults

// Tearing the disk buffer's tail while the agent is down, as a crash in
// the middle of a write (or power loss before the page cache reached the
// disk) leaves it. The record layout is agent/wal's (record.go):
// [u32 length][u32 crc][u64 index][payload], little-endian, in segment
// files named <first index>.wal.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// tearTail damages the last segment in logDir and says what it did, and
// returns the index of the first record it damaged (0 if it only appended
// garbage). For tearPowerLoss, snap is the index positions.json holds;
// when that record is not in the last segment (sealed segments were
// fsynced when sealed, so power loss cannot cut them), the last record is
// cut instead.
func tearTail(t *testing.T, logDir string, kind tear, snap uint64, rng *rand.Rand) (string, uint64) {
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
	if kind == tearPowerLoss {
		for i, at := range starts {
			if recordIndex(b, at) != snap {
				continue
			}
			end := len(b)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			keep := at + 1 + rng.IntN(end-at-1)
			if err := os.Truncate(path, int64(keep)); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%s: power loss: cut inside record %d (the snapshot's), %d of %d records after it lost with it",
				name, snap, len(starts)-i-1, len(starts)), snap
		}
		kind = tearCut
	}
	switch kind {
	case tearCut:
		last := starts[len(starts)-1]
		keep := last + 1 + rng.IntN(len(b)-last-1)
		if err := os.Truncate(path, int64(keep)); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: last record (at %d, %d bytes) cut to %d bytes", name, last, len(b)-last, keep-last), recordIndex(b, last)
	case tearFlip:
		last := starts[len(starts)-1]
		at := last + walHeader + rng.IntN(len(b)-last-walHeader)
		b[at] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: byte %d of the last record (at %d) flipped", name, at-last, last), recordIndex(b, last)
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
		return fmt.Sprintf("%s: %d bytes of garbage appended after %d records", name, len(junk), len(starts)), 0
	}
}

func recordIndex(b []byte, at int) uint64 { return binary.LittleEndian.Uint64(b[at+8:]) }

// bufferState describes, for a torn record index, what the buffer's side
// files say about it: the feed position snapshot (positions.json) and each
// sink's cursor (cursors/<sink>, the next index to write). A snapshot
// position at or past the torn index, with a sink whose cursor has not
// passed it, is the case where the cut entry's points must come back
// from the plugin and not from the snapshot's position onwards.
func bufferState(t *testing.T, bufDir string, torn uint64) (string, bool) {
	t.Helper()
	snap := snapshotIndex(t, bufDir)
	desc := fmt.Sprintf("positions.json: index %d", snap)
	behind := false
	cursors, _ := filepath.Glob(filepath.Join(bufDir, "cursors", "*"))
	for _, c := range cursors {
		if strings.HasSuffix(c, ".tmp") {
			continue
		}
		b, err := os.ReadFile(c)
		if err != nil || len(b) != 8 {
			t.Fatalf("cursor %s: %v (%d bytes)", c, err, len(b))
		}
		next := binary.BigEndian.Uint64(b)
		desc += fmt.Sprintf(", cursor %s: %d", filepath.Base(c), next)
		behind = behind || next <= torn
	}
	return desc, torn != 0 && snap >= torn && behind
}

// snapshotIndex is the log index of the feed's position in positions.json
// (0 if there is none yet).
func snapshotIndex(t *testing.T, bufDir string) uint64 {
	t.Helper()
	var positions map[string]struct {
		Index uint64 `json:"index"`
	}
	raw, err := os.ReadFile(filepath.Join(bufDir, "positions.json"))
	if err == nil {
		err = json.Unmarshal(raw, &positions)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("positions.json: %v", err)
	}
	return positions[feedName].Index
}
