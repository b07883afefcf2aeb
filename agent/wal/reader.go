package wal

import (
	"fmt"
	"io"
	"os"
)

// readChunk is how much a Reader reads at once when records are smaller.
const readChunk = 256 << 10

// Reader reads a Log's records in index order from its own file handle.
// It is not safe for concurrent use; give each consumer its own.
type Reader struct {
	l    *Log
	next uint64   // index Next returns next (or the first after a gap)
	seg  *segment // segment next is read from; nil until opened
	f    *os.File // seg's file, opened read-only
	buf  []byte   // bytes of seg's file from offset bufOff
	off  int64
	done bool // Close was called
}

// NewReader returns a Reader whose first record has index from, which must
// be at most LastIndex+1 and not removed by TruncateFront (an index in a
// gap before FirstIndex starts at FirstIndex). The segment holding from is opened at
// once, so a TruncateFront after NewReader cannot take it away.
func (l *Log) NewReader(from uint64) (*Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if from < l.compacted {
		return nil, fmt.Errorf("%w: reader from %d, first index %d", ErrCompacted, from, l.segs[0].first)
	}
	if from > l.last+1 {
		return nil, fmt.Errorf("%w: reader from %d, last index %d", ErrOutOfRange, from, l.last)
	}
	r := &Reader{l: l, next: from}
	if err := r.seekLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// Next returns the next record. It returns io.EOF when it has caught up
// with the Log; records appended later are returned by later calls (see
// Log.Notify). Across a gap left by a quarantined segment the index
// jumps. The payload is valid until the next call.
func (r *Reader) Next() (index uint64, payload []byte, err error) {
	if r.done {
		return 0, nil, ErrClosed
	}
	l := r.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, nil, ErrClosed
	}
	if r.next > l.last {
		l.mu.Unlock()
		return 0, nil, io.EOF
	}
	if r.next >= r.seg.next() {
		if err := r.seekLocked(); err != nil {
			l.mu.Unlock()
			return 0, nil, err
		}
	}
	// r.seg.ends is read under mu: Append extends it.
	index, s := r.next, r.seg
	start, end, committed := s.offset(index), s.offset(index+1), s.size()
	l.mu.Unlock()

	b, err := r.read(start, end, committed)
	if err != nil {
		return 0, nil, err
	}
	payload, _, err = parseRecord(b, index)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: index %d in %s at offset %d: %v", ErrCorrupt, index, s.path, start, err)
	}
	r.next++
	return index, payload, nil
}

// seekLocked points the reader at the segment holding r.next, opening its
// file. Opening under mu means TruncateFront cannot remove the file between
// finding the segment and opening it. Called with l.mu held.
func (r *Reader) seekLocked() error {
	l := r.l
	if r.next < l.compacted {
		// Removed; an index in a gap before the first segment is not:
		// segmentFor jumps over it.
		return fmt.Errorf("%w: reader at %d, first index %d", ErrCompacted, r.next, l.segs[0].first)
	}
	s := l.segmentFor(r.next)
	r.next = max(r.next, s.first)
	if s == r.seg {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("wal: reader: %w", err)
	}
	if r.f != nil {
		r.f.Close()
	}
	r.seg, r.f, r.buf, r.off = s, f, r.buf[:0], 0
	return nil
}

// read returns bytes [start, end) of the current segment, reading ahead up
// to committed (the bytes Append has finished writing) into r.buf.
func (r *Reader) read(start, end, committed int64) ([]byte, error) {
	if start >= r.off && end <= r.off+int64(len(r.buf)) {
		return r.buf[start-r.off : end-r.off], nil
	}
	n := min(committed-start, max(end-start, readChunk))
	if int64(cap(r.buf)) < n || cap(r.buf) > maxKeptBuffer && n <= maxKeptBuffer {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := r.f.ReadAt(r.buf, start); err != nil {
		r.buf = r.buf[:0]
		return nil, fmt.Errorf("wal: read %s at %d: %w", r.seg.path, start, err)
	}
	r.off = start
	return r.buf[:end-start], nil
}

// Close releases the reader's file. It is idempotent.
func (r *Reader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	r.buf = nil
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("wal: reader: %w", err)
	}
	return nil
}

// NextIndex is the index the next call to Next will read; after Next
// returned ErrCorrupt, the index of the corrupt record.
func (r *Reader) NextIndex() uint64 { return r.next }
