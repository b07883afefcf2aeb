package pipeline

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/capread"

	"github.com/sluicehq/sluice/internal/atomicfile"

	"github.com/sluicehq/sluice/agent/wal"
)

// The layout before per-sink logs: one log for every sink in log/, each
// entry naming its sinks, and each sink's cursor, an 8-byte big-endian
// index, in cursors/<sink>.
const (
	legacyLogDir     = "log"
	legacyCursorsDir = "cursors"
	migratingDir     = "sinks.migrating"
)

// migrate moves a buffer of the shared-log layout into per-sink logs:
// each configured sink's log gets, in order, the entries routed to it
// that its cursor had not passed, numbered per feed as they come. It is
// safe to interrupt: the new logs are built in sinks.migrating/ and
// renamed into place whole; the old log goes only after that.
func (b *Buffer) migrate(sinks []SinkLimit, rep *RecoveryReport) error {
	old := filepath.Join(b.dir, legacyLogDir)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	staging := filepath.Join(b.dir, migratingDir)
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	if fi, err := os.Stat(b.sinksDir()); err == nil && fi.IsDir() {
		// An earlier run moved everything and stopped before removing
		// the old layout.
		return b.removeLegacy()
	}

	l, rec, err := wal.Open(old, wal.Options{Sync: wal.SyncNever, Logger: b.logger})
	if err != nil {
		return err
	}
	defer l.Close()
	addRecovery(&rep.Recovery, rec)

	type target struct {
		lim    SinkLimit
		from   uint64
		log    *wal.Log
		copied uint64
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.log != nil {
				t.log.Close()
			}
		}
	}()
	for _, lim := range sinks {
		raw, err := capread.File(filepath.Join(b.dir, legacyCursorsDir, lim.Name), 64, "a cursor file")
		if errors.Is(err, os.ErrNotExist) {
			continue // the sink was new: nothing was routed to it
		}
		from := l.FirstIndex()
		if err == nil && len(raw) == 8 {
			from = max(from, binary.BigEndian.Uint64(raw))
		}
		dir := filepath.Join(staging, lim.Name)
		nl, _, err := wal.Open(filepath.Join(dir, "log"), wal.Options{
			SegmentBytes: segmentBytesFor(b.opts.SegmentBytes, lim.MaxBytes), Sync: wal.SyncNever, Logger: b.logger,
		})
		if err != nil {
			return err
		}
		targets = append(targets, &target{lim: lim, from: from, log: nl})
	}

	pf, _ := readPositions(b.positionsPath())
	var buf []byte
	var werr error // the first failed append: the migration stops there
	err = scanLog(l, l.FirstIndex(), func(idx uint64, payload []byte) {
		if werr != nil {
			return
		}
		h, err := parseEntryHeader(payload)
		if err != nil {
			rep.BadEntries++
			return
		}
		pf.Seq[h.Feed]++
		seq := pf.Seq[h.Feed]
		var to []string // the sinks the entry is still to reach
		for _, t := range targets {
			if h.routedTo(t.lim.Name) && idx >= t.from {
				to = append(to, t.lim.Name)
			}
		}
		for _, t := range targets {
			if !h.routedTo(t.lim.Name) {
				continue
			}
			if idx < t.from {
				if h.Position != nil {
					w := pf.Written[t.lim.Name]
					if w == nil {
						w = make(map[string]positionAt)
						pf.Written[t.lim.Name] = w
					}
					w[h.Feed] = w[h.Feed].newer(positionAt{Seq: seq, Position: h.Position})
				}
				continue
			}
			buf = appendEntryHeader(buf[:0], &h, seq, to)
			if _, werr = t.log.Append(buf); werr != nil {
				return
			}
			t.copied++
			rep.Migrated++
		}
	})
	if err = errors.Join(err, werr); err != nil {
		return err
	}
	for _, t := range targets {
		if err := t.log.Close(); err != nil {
			return err
		}
		t.log = nil
		cf, _, _, err := openCursorFile(filepath.Join(staging, t.lim.Name, "cursor"), true)
		if err != nil {
			return err
		}
		err = cf.save(1)
		if cerr := cf.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	pf.Version = positionsVersion
	raw, err := json.Marshal(pf)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(b.positionsPath(), raw); err != nil {
		return err
	}
	if err := os.Rename(staging, b.sinksDir()); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(b.dir); err != nil {
		return err
	}
	rep.MigratedFrom = old
	l.Close()
	b.logger.Info("buffer: moved the shared log into one log per sink", "entries", rep.Migrated, "from", old)
	return b.removeLegacy()
}

// removeLegacy removes the shared log and its cursors once migrated.
func (b *Buffer) removeLegacy() error {
	for _, d := range []string{legacyLogDir, legacyCursorsDir} {
		if err := os.RemoveAll(filepath.Join(b.dir, d)); err != nil {
			return fmt.Errorf("remove the migrated %s: %w", d, err)
		}
	}
	return atomicfile.SyncDir(b.dir)
}
