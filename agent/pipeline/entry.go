package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
)

// Entry is one record of the disk buffer: a feed's batch after
// normalization, the sinks it is routed to, and the feed's position after
// it. Points are encoded with the plugin wire format (internal/pointcodec,
// the codec the plugin SDK sends them in: a source.v1 Batch holding only
// points, the protobuf runtime's bytes).
type Entry struct {
	Feed     string
	Sinks    []string
	Position sluice.Position
	Points   []sluice.Point
	// Raw, when not nil, is Points[:RawN] already encoded (the plugin's
	// bytes, see sdk.Batch.RawPoints): the entry stores it as it is and
	// encodes only the points after it. pointcodec.DecodePoints must read
	// exactly Points[:RawN] from it.
	Raw  []byte
	RawN int
}

// entryHeader is an entry without its points, which is all that recovery
// and the cursors' bookkeeping need to read.
type entryHeader struct {
	Feed string
	// Seq numbers the feed's entries in append order, from 1; every sink's
	// copy of an entry has the same. It orders positions across sinks.
	Seq uint64
	// Sinks are the sinks the entry went to: after a crash, a sink whose
	// log lacks an entry routed to it bounds where the feed resumes.
	Sinks    []string
	Position sluice.Position
	NPoints  int
	body     []byte // the encoded points
}

var errEntry = errors.New("malformed buffer entry")

// Entry format versions. Version 1 was the record of the shared log (one
// log for every sink); it is read only to migrate such a buffer. Version
// 2 is a record of a sink's log, numbered within its feed.
const (
	entryVersionShared = 1
	entryVersion       = 2
)

// appendEntry encodes e, the seq-th entry of its feed, going to sinks,
// after dst:
//
//	version u8 | feed | seq (uvarint) | n sinks (uvarint) | sinks... | position | n points (uvarint) | points
//
// where strings and the position are uvarint-length-prefixed. (Version 1
// had no seq.)
func appendEntry(dst []byte, e *Entry, seq uint64, sinks []string) ([]byte, error) {
	dst = appendHead(dst, e.Feed, seq, sinks)
	dst = appendBytes(dst, e.Position)
	dst = binary.AppendUvarint(dst, uint64(len(e.Points)))
	points := e.Points
	if e.Raw != nil {
		dst = append(dst, e.Raw...)
		points = points[e.RawN:]
	}
	return pointcodec.AppendPoints(dst, points)
}

// appendEntryHeader re-encodes a parsed entry (of either version) as a
// version-2 record with the given seq, copying its points' bytes as they
// are.
func appendEntryHeader(dst []byte, h *entryHeader, seq uint64, sinks []string) []byte {
	dst = appendHead(dst, h.Feed, seq, sinks)
	dst = appendBytes(dst, h.Position)
	dst = binary.AppendUvarint(dst, uint64(h.NPoints))
	return append(dst, h.body...)
}

func appendHead(dst []byte, feed string, seq uint64, sinks []string) []byte {
	dst = append(dst, entryVersion)
	dst = appendBytes(dst, []byte(feed))
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(len(sinks)))
	for _, s := range sinks {
		dst = appendBytes(dst, []byte(s))
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// parseEntryHeader decodes everything but the points. The returned
// strings and position are copies; body aliases b.
func parseEntryHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) == 0 || (b[0] != entryVersion && b[0] != entryVersionShared) {
		return h, fmt.Errorf("%w: unknown version", errEntry)
	}
	version := b[0]
	b = b[1:]
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	uvarint := func() (uint64, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return n, true
	}
	feed, ok := next()
	if !ok {
		return h, fmt.Errorf("%w: feed", errEntry)
	}
	h.Feed = string(feed)
	if version == entryVersion {
		if h.Seq, ok = uvarint(); !ok {
			return h, fmt.Errorf("%w: seq", errEntry)
		}
	}
	ns, ok := uvarint()
	if !ok || ns > uint64(len(b)) { // every sink takes at least a byte
		return h, fmt.Errorf("%w: sink count", errEntry)
	}
	h.Sinks = make([]string, ns)
	for i := range h.Sinks {
		s, ok := next()
		if !ok {
			return h, fmt.Errorf("%w: sink %d", errEntry, i)
		}
		h.Sinks[i] = string(s)
	}
	pos, ok := next()
	if !ok {
		return h, fmt.Errorf("%w: position", errEntry)
	}
	if len(pos) > 0 {
		h.Position = append(sluice.Position(nil), pos...)
	}
	np, ok := uvarint()
	if !ok || np > uint64(len(b)) { // every point takes at least a byte
		return h, fmt.Errorf("%w: point count", errEntry)
	}
	h.NPoints, h.body = int(np), b
	return h, nil
}

// routedTo reports whether the entry goes to sink.
func (h *entryHeader) routedTo(sink string) bool {
	for _, s := range h.Sinks {
		if s == sink {
			return true
		}
	}
	return false
}

// points decodes the entry's points.
func (h *entryHeader) points() ([]sluice.Point, error) {
	ps, err := pointcodec.DecodePoints(h.body, h.NPoints)
	if err != nil {
		return nil, err
	}
	if len(ps) != h.NPoints {
		return nil, fmt.Errorf("%w: %d points, header says %d", errEntry, len(ps), h.NPoints)
	}
	return ps, nil
}
