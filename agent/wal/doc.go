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
//     a CRC, and Open cuts a torn tail and skips a corrupt record, keeping
//     the records after it, instead of failing.
//   - It has no group commit: with sync on, each write pays its own fsync.
//     Here concurrent SyncAlways appenders share fsyncs, and SyncInterval
//     batches them on a timer.
//   - It caches segments in memory. Here memory is 4 bytes a record (see
//     below) plus each Reader's read buffer; payloads stay on disk.
//
// # Format
//
// A directory holds segment files named %020d.wal after the index of their
// first record, a LOCK file (flock: one open Log per directory), and the
// *.corrupt files Open kept of damaged segments (see Recovery). A segment
// is a run of records
//
//	[u32 length][u32 crc32c(index || payload)][u64 index][payload]
//
// little-endian, CRC-32C (Castagnoli). Indexes start at 1 and follow each
// other without gaps within a segment, and from one segment to the next
// unless Open skipped corrupt records between them. A segment grows until the next
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
// The kernel may also have written a later page back and not an earlier
// one: Open then finds zeros followed by valid records, which it cannot
// tell from corruption, and treats as such (below).
//
// A failed write (disk full) returns the error from Append and cuts the
// partial record, so the log stays as it was and later appends can succeed
// once there is space.
//
// # Recovery
//
// Open reads every segment in full and checks every record (length, CRC,
// index). It never fails because of what the files contain. At a bad
// record it resyncs: it looks further on for the next offset where a
// whole record starts, with a valid CRC and an index after the last good
// one (and no larger than the offset allows, 16 bytes a record), and goes
// on from there. Cheap header checks come before any CRC, so the search is
// linear in practice.
//
//   - Bad bytes with nothing valid after them at the end of the last
//     segment are what a crash mid-write leaves: the file is cut after the
//     last good record (logged at warn, "cut a torn or corrupt tail").
//     Recovery.TruncatedBytes and TruncatedRecords count what was cut
//     (garbage or a partial record counts as one record); the next Append
//     takes the index of the first record cut.
//   - A bad record with valid records after it, or bad bytes at the end of
//     a sealed segment (fsynced when sealed), cannot come from a crash:
//     the disk or something else changed them. Open copies the segment as
//     it was to <name>.corrupt for inspection, keeps its valid records
//     before the bad bytes in the segment (cut after them) and writes each
//     run of valid records after bad bytes to a new segment file named
//     after its first index. Each bad region is logged at error ("skipped
//     corrupt records") with the file, offset, bytes, the index range lost
//     and the copy. Recovery.Quarantined lists the copy, SkippedBytes and
//     LostRecords count the bytes and the indexes skipped.
//   - A sealed segment with no valid record at all is renamed to *.corrupt
//     whole; LostRecords counts the indexes up to the next segment.
//
// Readers and NewReader jump over the gaps: a cursor inside one reads on
// from the first record after it. New records never reuse an index a
// skipped or set-aside record held: appends go on after the highest valid
// index Open saw. A second Open finds nothing to repair. The copy and the
// new files are fsynced before the damaged segment is cut, so a crash
// during recovery loses nothing; the next Open salvages again and reuses
// the files already written.
//
// Power loss can leave zeros followed by valid records (see Durability);
// Open keeps those records and counts the zeroed ones as lost, so a source
// that resumes from the newest record's position does not fetch them
// again. A payload that embeds a whole record of a plausible index, CRC
// included, could be taken for one if corruption hits just before it.
//
// # Memory
//
// SizeFrom must be exact, and a Reader should start mid-segment without
// scanning it, so each segment keeps in memory the end offset of each of
// its records: a []uint32, 4 bytes a record. With 16 KiB batches that is
// 4 KiB per 16 MiB segment; with 100-byte records, about 3.5% of the
// bytes on disk. Open also reads one segment at a time whole, into a
// buffer the size of the largest segment (SegmentBytes, or one record if
// that is larger) that it drops afterwards; salvaging a damaged segment
// writes from that buffer and copies the file in chunks.
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
