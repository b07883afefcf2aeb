package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Entry is one record of the disk buffer: a feed's batch after
// normalization, the sinks it is routed to, and the feed's position after
// it. Points are encoded with the plugin wire format (sdk.AppendPoints
// writes the bytes sdk.MarshalPoints would, without building protobuf
// messages; sdk.DecodePoints reads them back).
type Entry struct {
	Feed     string
	Sinks    []string
	Position sluice.Position
	Points   []sluice.Point
}

// entryHeader is an entry without its points, which is all that recovery
// and routing need to read.
type entryHeader struct {
	Feed     string
	Sinks    []string
	Position sluice.Position
	NPoints  int
	body     []byte // the encoded points
}

var errEntry = errors.New("malformed buffer entry")

const entryVersion = 1

// appendEntry encodes e after dst:
//
//	version u8 | feed | n sinks (uvarint) | sinks... | position | n points (uvarint) | points
//
// where strings and the position are uvarint-length-prefixed.
func appendEntry(dst []byte, e *Entry) ([]byte, error) {
	dst = append(dst, entryVersion)
	dst = appendBytes(dst, []byte(e.Feed))
	dst = binary.AppendUvarint(dst, uint64(len(e.Sinks)))
	for _, s := range e.Sinks {
		dst = appendBytes(dst, []byte(s))
	}
	dst = appendBytes(dst, e.Position)
	dst = binary.AppendUvarint(dst, uint64(len(e.Points)))
	return sdk.AppendPoints(dst, e.Points)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// parseEntryHeader decodes everything but the points. The returned
// strings and position are copies; body aliases b.
func parseEntryHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) == 0 || b[0] != entryVersion {
		return h, fmt.Errorf("%w: unknown version", errEntry)
	}
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
	count := func() (int, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) { // every element takes at least a byte
			return 0, false
		}
		b = b[k:]
		return int(n), true
	}
	feed, ok := next()
	if !ok {
		return h, fmt.Errorf("%w: feed", errEntry)
	}
	h.Feed = string(feed)
	ns, ok := count()
	if !ok {
		return h, fmt.Errorf("%w: sink count", errEntry)
	}
	h.Sinks = make([]string, ns)
	for i := range ns {
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
	np, k := binary.Uvarint(b)
	if k <= 0 || np > uint64(len(b)) {
		return h, fmt.Errorf("%w: point count", errEntry)
	}
	h.NPoints, h.body = int(np), b[k:]
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
	ps, err := sdk.DecodePoints(h.body, h.NPoints)
	if err != nil {
		return nil, err
	}
	if len(ps) != h.NPoints {
		return nil, fmt.Errorf("%w: %d points, header says %d", errEntry, len(ps), h.NPoints)
	}
	return ps, nil
}
