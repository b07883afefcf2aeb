// Package wal is the agent's write-ahead log: an append-only, segmented,
// checksummed record log on local disk. Every batch a plugin delivers is
// appended here before it counts as received, and each sink reads the log
// from its own cursor, so a kill -9, a power loss or a sink that is down
// for an hour loses nothing.
//
// # Why not github.com/tidwall/wal
//
// Telegraf uses tidwall/wal. We do not, for three reasons:
//
//   - It has no per-record checksums. A torn tail (the normal result of a
//     crash mid-write) makes Open return ErrCorrupt for the whole log, so
//     an agent that restarts after a crash fails again at once: a crash
//     loop, until someone deletes data by hand. Here every record carries
//     a CRC, and Open cuts a torn tail and sets a corrupt segment aside
//     instead of failing.
//   - It has no group commit: with sync on, each write pays its own fsync.
//     Here concurrent SyncAlways appenders share fsyncs, and SyncInterval
//     batches them on a timer.
//   - It caches segments in memory. Here memory is 4 bytes a record (see
//     below) plus each Reader's read buffer; payloads stay on disk.
//
// # Format
//
// A directory holds segment files named %020d.wal after the index of their
// first record, a LOCK file (flock: one open Log per directory), and any
// segments Open set aside as *.corrupt. A segment is a run of records
//
//	[u32 length][u32 crc32c(index || payload)][u64 index][payload]
//
// little-endian, CRC-32C (Castagnoli). Indexes start at 1 and follow each
// other without gaps, within a segment and from one segment to the next;
// only a quarantined segment leaves a gap. A segment grows until the next
// record would take it past Options.SegmentBytes, then it is fsynced and
// sealed and a new one starts. Only the last (active) segment is written.
//
// # Durability
//
// Append encodes the record into a buffer and writes it with one pwrite(2),
// no user-space buffering: when Append returns, the record is in the page
// cache, and a process crash (panic, kill -9, OOM kill) loses nothing, under
// every policy. What the policies differ in is power loss or a kernel
// panic:
//
//   - SyncAlways: Append returns after an fsync of the segment, so
//     every acknowledged record survives. Concurrent appenders share one
//     fsync (group commit): whoever syncs covers everything written so far.
//   - SyncInterval (default): a goroutine owned by the Log fsyncs the active
//     segment every SyncInterval (100ms) if anything was appended; up to
//     SyncInterval of acknowledged appends can be lost.
//   - SyncNever: fsync only when a segment is sealed and on Close; what is
//     lost is whatever the kernel had not written back (by default Linux
//     writes dirty pages back within about 30s).
//
// Open fsyncs the active segment, so that what a crashed process left in
// the page cache is durable before anyone reads it.
//
// Creating, renaming and removing segment files is followed by an fsync of
// the directory under every policy. When an fsync fails, the Log refuses
// every later Append and Sync with that error: the kernel may have dropped
// the dirty pages, so a later fsync that succeeds would prove nothing. Open
// it again to go on from what is really on disk.
//
// After a power loss with SyncInterval or SyncNever, LastIndex can come
// back lower than before, and new appends reuse the lost indexes. A cursor
// saved elsewhere may then be past LastIndex+1 (NewReader says
// ErrOutOfRange); check cursors against LastIndex before new appends.
//
// A failed write (disk full) returns the error from Append and cuts the
// partial record, so the log stays as it was and later appends can succeed
// once there is space.
//
// # Recovery
//
// Open reads every segment in full and checks every record (length, CRC,
// index). It never fails because of what the files contain:
//
//   - A bad or partial record at the end of the last segment is what a
//     crash mid-write leaves: the file is truncated after the last good
//     record (logged at warn). Recovery counts the bytes and the records cut;
//     garbage or a partial record counts as one.
//   - A bad record in an earlier segment cannot come from a crash (sealed
//     segments were fsynced), so the disk or something else changed it: the
//     whole segment is renamed to *.corrupt for inspection (logged at error
//     with the file and offset), and the log continues with the next one.
//     Indexes jump over it; Recovery.LostRecords counts the jump. New
//     records never reuse an index a set-aside segment held.
//
// # Memory
//
// SizeFrom must be exact, and a Reader should start mid-segment without
// scanning it, so each segment keeps in memory the end offset of each of
// its records: a []uint32, 4 bytes a record. With 16 KiB batches that is
// 4 KiB per 16 MiB segment; with 100-byte records, about 3.5% of the
// bytes on disk. Open also reads one segment at a time whole, into a
// buffer the size of the largest segment (SegmentBytes, or one record if
// that is larger) that it drops afterwards.
//
// # Readers
//
// A Reader has its own file handle and reads 256 KiB at a time (more for a
// larger record) into a buffer it reuses, so sequential reading is a
// syscall per 256 KiB. It finds any index through the in-memory offsets,
// and reads only bytes Append has finished, so it sees new appends and
// never a half-written record. TruncateFront does not wait for readers: a
// Reader keeps reading the segment it has open after the file is removed
// (POSIX unlink semantics; the disk space comes back when it moves on),
// and gets ErrCompacted only if it still has to open a removed segment.
//
// # Benchmarks
//
// WAL.md has the command and figures: about 0.3 ms an Append with
// SyncAlways (one fsync; concurrent appenders share them), about 20-30 µs
// for 16 KiB with SyncInterval or SyncNever, no allocations.
package wal
