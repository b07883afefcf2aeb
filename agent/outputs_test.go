package agent

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

func sqliteSinkConfig(path string) config.Sink {
	c := sqlite.DefaultConfig()
	c.Path = path
	return config.Sink{Type: "sqlite", Pipeline: config.Default().Pipeline, Options: &c}
}

func openTestBuffer(t *testing.T, sinks ...string) *pipeline.Buffer {
	t.Helper()
	var limits []pipeline.SinkLimit
	for _, name := range sinks {
		limits = append(limits, pipeline.SinkLimit{Name: name, MaxBytes: 1 << 30, WhenFull: config.Block})
	}
	buf, _, err := pipeline.OpenBuffer(pipeline.BufferOptions{Dir: t.TempDir(), Sync: wal.SyncNever}, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// The output set declares what the buffer saved before it writes the
// backlog (so a real SQLite file keeps one row per key), and Close
// drains the backlog, then closes the sinks: no goroutine of theirs is
// left.
func TestOutputSetDeclaresTheBacklogAndDrainsIt(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db.db")
	buf := openTestBuffer(t, "db")
	defer buf.Close()
	// A backlog from before a restart: every point three times.
	if err := buf.Declare("f", []sluice.Measurement{{Name: "m", Unique: []string{"seq"}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		points := make([]sluice.Point, 100)
		for j := range points {
			points[j] = sluice.Point{Measurement: "m", Fields: []sluice.Field{{Key: "seq", Value: sluice.Int(int64(j))}}, Time: time.Unix(1e9, 0)}
		}
		if err := buf.Append(ctx, &pipeline.Entry{Feed: "f", Sinks: []string{"db"}, Position: sluice.Position(fmt.Sprint(i)), Points: points}); err != nil {
			t.Fatal(err)
		}
	}
	outs := newOutputSet(map[string]config.Sink{"db": sqliteSinkConfig(path)}, buf, newLagHistogram(), redact.NewScrubber(), slog.New(slog.DiscardHandler))
	if err := outs.Open(ctx); err != nil {
		t.Fatal(err)
	}
	drain, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := outs.Close(drain); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := outs.Close(drain); err != nil {
		t.Fatalf("a second close: %v", err)
	}
	if st := outs.status(); len(st) != 1 || st[0].Written != 300 || st[0].BufferedPoints != 0 {
		t.Errorf("status after close: %+v; want 300 written, none buffered", st)
	}
	db, err := sql.Open(testbin.SQLiteDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM m`).Scan(&rows); err != nil || rows != 100 {
		t.Errorf("rows = %d (%v), want 100: one per key", rows, err)
	}
}

// A sink that cannot open stops the start, and what opened before it is
// closed again: the other sink's writer and database are not left
// running.
func TestOutputSetOpenFailureLeavesNothingOpen(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	buf := openTestBuffer(t, "a", "b")
	defer buf.Close()
	outs := newOutputSet(map[string]config.Sink{
		"a": sqliteSinkConfig(filepath.Join(dir, "a.db")),
		"b": sqliteSinkConfig(filepath.Join(notDir, "b.db")),
	}, buf, newLagHistogram(), redact.NewScrubber(), slog.New(slog.DiscardHandler))
	err := outs.Open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "open sink b") {
		t.Fatalf("open: %v, want sink b's error", err)
	}
}
