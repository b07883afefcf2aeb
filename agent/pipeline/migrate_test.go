package pipeline

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/pointcodec"
)

// appendSharedEntry encodes an entry of the shared-log layout (version 1).
func appendSharedEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, entryVersionShared)
	dst = appendBytes(dst, []byte(e.Feed))
	dst = binary.AppendUvarint(dst, uint64(len(e.Sinks)))
	for _, s := range e.Sinks {
		dst = appendBytes(dst, []byte(s))
	}
	dst = appendBytes(dst, e.Position)
	dst = binary.AppendUvarint(dst, uint64(len(e.Points)))
	dst, _ = pointcodec.AppendPoints(dst, e.Points)
	return dst
}

// A buffer of the shared-log layout, with a backlog for two sinks at
// different cursors, opens as per-sink logs: each sink gets exactly what
// it had not written, positions carry over, and the old layout is gone.
func TestMigrateSharedLog(t *testing.T) {
	dir := t.TempDir()
	l, _, err := wal.Open(filepath.Join(dir, legacyLogDir), wal.Options{Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		sinks := []string{"a", "b"}
		if i%2 == 1 {
			sinks = []string{"a"}
		}
		e := &Entry{Feed: "f", Sinks: sinks, Position: sluice.Position(fmt.Sprint(i)), Points: pts(10*i, 10*i+10)}
		if _, err := l.Append(appendSharedEntry(nil, e)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	os.MkdirAll(filepath.Join(dir, legacyCursorsDir), 0o755)
	for name, next := range map[string]uint64{"a": 5, "b": 3, "gone": 1} {
		os.WriteFile(filepath.Join(dir, legacyCursorsDir, name), binary.BigEndian.AppendUint64(nil, next), 0o644)
	}
	old, _ := json.Marshal(map[string]any{"f": map[string]any{"index": 1, "position": sluice.Position("0")}})
	os.WriteFile(filepath.Join(dir, "positions.json"), old, 0o644)

	limits := []SinkLimit{{Name: "a", MaxBytes: 1 << 20}, {Name: "b", MaxBytes: 1 << 20}, {Name: "new", MaxBytes: 1 << 20}}
	b, rep, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	// a had written entries 1-4: it gets 5 and 6; b had written 1-2 and
	// gets 3 and 5 (4 and 6 were not routed to it).
	if rep.Migrated != 4 || rep.MigratedFrom == "" {
		t.Errorf("migrated %d entries from %q, want 4", rep.Migrated, rep.MigratedFrom)
	}
	for _, d := range []string{legacyLogDir, legacyCursorsDir, migratingDir} {
		if _, err := os.Stat(filepath.Join(dir, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the migration", d)
		}
	}
	if got := string(b.Position("f")); got != "5" {
		t.Errorf("position after migration = %q, want 5", got)
	}
	want := map[string][]int64{"a": seq(40, 60), "b": append(seq(20, 30), seq(40, 50)...), "new": nil}
	for name, w := range want {
		s := &memSink{}
		o := NewOutput(name, s, testCfg(config.Block), b.Cursor(name), discard, nil)
		o.Start()
		closeOutput(t, o)
		if got := s.ids(); !slices.Equal(got, w) {
			t.Errorf("sink %s wrote %v, want %v", name, got, w)
		}
	}
	b.Close()

	// Opening again finds nothing to migrate and nothing to write.
	b, rep, err = OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if rep.Migrated != 0 || rep.Entries != 4 {
		t.Errorf("second open: migrated %d, %d entries in the logs (written, not yet removed)", rep.Migrated, rep.Entries)
	}
	if got := string(b.Position("f")); got != "5" {
		t.Errorf("position after reopening = %q, want 5", got)
	}
}

// A migration cut short leaves sinks.migrating behind, which the next
// open discards and redoes from the old log.
func TestMigrationInterruptedIsRedone(t *testing.T) {
	dir := t.TempDir()
	l, _, err := wal.Open(filepath.Join(dir, legacyLogDir), wal.Options{Sync: wal.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(appendSharedEntry(nil, &Entry{Feed: "f", Sinks: []string{"a"}, Points: pts(0, 3)})); err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.MkdirAll(filepath.Join(dir, legacyCursorsDir), 0o755)
	os.WriteFile(filepath.Join(dir, legacyCursorsDir, "a"), binary.BigEndian.AppendUint64(nil, 1), 0o644)
	os.MkdirAll(filepath.Join(dir, migratingDir, "a", "log"), 0o755)
	os.WriteFile(filepath.Join(dir, migratingDir, "a", "log", "junk"), []byte("half a migration"), 0o644)

	limits := []SinkLimit{{Name: "a", MaxBytes: 1 << 20}}
	b, rep, err := OpenBuffer(BufferOptions{Dir: dir, Sync: wal.SyncNever}, limits, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if rep.Migrated != 1 {
		t.Errorf("migrated %d entries, want 1", rep.Migrated)
	}
	s := &memSink{}
	o := NewOutput("a", s, testCfg(config.Block), b.Cursor("a"), discard, nil)
	o.Start()
	closeOutput(t, o)
	if got := s.ids(); !slices.Equal(got, seq(0, 3)) {
		t.Errorf("wrote %v", got)
	}
}
