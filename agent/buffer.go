package agent

import (
	"log/slog"
	"path/filepath"

	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/agent/wal"
	"github.com/sluicehq/sluice/config"
)

// openBuffer opens the disk buffer in data_dir, with a log for each
// configured sink, and logs what opening it found and repaired.
func openBuffer(cfg *config.Config, log *slog.Logger) (*pipeline.Buffer, *BufferRepair, error) {
	var limits []pipeline.SinkLimit
	for _, name := range sortedKeys(cfg.Sinks) {
		p := cfg.Sinks[name].Pipeline
		limits = append(limits, pipeline.SinkLimit{Name: name, MaxBytes: p.MaxBufferBytes, WhenFull: p.WhenFull})
	}
	buf, rep, err := pipeline.OpenBuffer(pipeline.BufferOptions{
		Dir:          filepath.Join(cfg.DataDir, "buffer"),
		Sync:         wal.SyncPolicy(cfg.Buffer.Fsync),
		SyncInterval: cfg.Buffer.FsyncInterval,
		SegmentBytes: cfg.Buffer.SegmentBytes,
	}, limits, log)
	if err != nil {
		return nil, nil, err
	}
	logRecovery(log, rep)
	return buf, bufferRepair(rep), nil
}

func logRecovery(log *slog.Logger, rep pipeline.RecoveryReport) {
	attrs := []any{"entries", rep.Entries}
	if len(rep.NewSinks) > 0 {
		attrs = append(attrs, "new_sinks", rep.NewSinks)
	}
	if rep.MigratedFrom != "" {
		attrs = append(attrs, "migrated_entries", rep.Migrated, "migrated_from", rep.MigratedFrom)
	}
	if len(rep.KeptApartAgain) > 0 {
		attrs = append(attrs, "kept_apart_batches", rep.KeptApartAgain)
	}
	log.Info("disk buffer opened", attrs...)
	for name, size := range rep.OrphanedSinks {
		log.Warn("disk buffer holds entries for a sink that is not configured; configure it again to deliver them, or remove its directory",
			"sink", name, "bytes", size)
	}
	if rep.TruncatedBytes > 0 || len(rep.Quarantined) > 0 || rep.BadEntries > 0 || len(rep.DamagedFiles) > 0 {
		log.Warn("disk buffer repaired on open",
			"truncated_bytes", rep.TruncatedBytes, "truncated_records", rep.TruncatedRecords,
			"quarantined", rep.Quarantined, "lost_records", rep.LostRecords, "skipped_bytes", rep.SkippedBytes, "bad_entries", rep.BadEntries,
			"damaged_files", rep.DamagedFiles)
	}
}

// BufferRepair is what opening the disk buffer repaired or did without,
// for status and metrics: records a crash or the disk damaged, and state
// files that could not be read.
type BufferRepair struct {
	TruncatedRecords int              `json:"truncated_records,omitempty"` // a torn tail cut off
	LostRecords      uint64           `json:"lost_records,omitempty"`      // records skipped as corrupt (their points are lost to that sink)
	SkippedBytes     int64            `json:"skipped_bytes,omitempty"`     // bytes of them
	Quarantined      []string         `json:"quarantined,omitempty"`       // copies of damaged log files, for inspection
	BadEntries       int              `json:"bad_entries,omitempty"`       // records whose content could not be decoded
	DamagedFiles     []string         `json:"damaged_files,omitempty"`     // cursor and state files done without
	OrphanedSinks    map[string]int64 `json:"orphaned_sinks,omitempty"`    // logs of sinks not configured, bytes
}

func bufferRepair(rep pipeline.RecoveryReport) *BufferRepair {
	r := &BufferRepair{
		TruncatedRecords: rep.TruncatedRecords, LostRecords: rep.LostRecords, SkippedBytes: rep.SkippedBytes, Quarantined: rep.Quarantined,
		BadEntries: rep.BadEntries, DamagedFiles: rep.DamagedFiles, OrphanedSinks: rep.OrphanedSinks,
	}
	if r.TruncatedRecords == 0 && r.LostRecords == 0 && len(r.Quarantined) == 0 && r.BadEntries == 0 &&
		len(r.DamagedFiles) == 0 && len(r.OrphanedSinks) == 0 {
		return nil
	}
	return r
}
