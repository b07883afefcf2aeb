package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A record on disk is
//
//	[u32 length][u32 crc32c(index || payload)][u64 index][payload]
//
// little-endian; length counts the payload only. The index is inside the
// checksum so that a record copied or replayed to the wrong place fails it.
const headerSize = 16

// MaxPayload is the largest payload Append accepts. It bounds what a
// corrupt length field can make Open or a Reader allocate, and keeps every
// segment offset within a uint32 (see maxSegmentBytes).
const MaxPayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Why parseRecord refused its input. errShort means the bytes end inside
// the record (a torn write, or a reader that needs more input); the others
// mean the bytes are there and wrong.
var (
	errShort    = errors.New("record truncated")
	errTooLarge = errors.New("record length over the limit")
	errChecksum = errors.New("record checksum mismatch")
	errIndex    = errors.New("record has an unexpected index")
)

// recordSize is the bytes a record with an n-byte payload takes on disk.
func recordSize(n int) int { return headerSize + n }

// RecordSize is the bytes Append of an n-byte payload adds to the log.
func RecordSize(n int) int64 { return int64(recordSize(n)) }

// appendRecord appends the encoding of (index, payload) to dst.
func appendRecord(dst []byte, index uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = append(dst, payload...)
	h := dst[start : start+headerSize]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], index)
	crc := crc32.Update(0, castagnoli, h[8:16])
	crc = crc32.Update(crc, castagnoli, dst[start+headerSize:])
	binary.LittleEndian.PutUint32(h[4:8], crc)
	return dst
}

// parseHeader reads the payload length and index of the record at the
// start of b, which must hold at least headerSize bytes.
func parseHeader(b []byte) (length uint32, sum uint32, index uint64) {
	return binary.LittleEndian.Uint32(b[0:4]),
		binary.LittleEndian.Uint32(b[4:8]),
		binary.LittleEndian.Uint64(b[8:16])
}

// parseRecord decodes the record at the start of b, which must carry index
// want. It returns the payload (a subslice of b) and the record's size.
func parseRecord(b []byte, want uint64) (payload []byte, n int, err error) {
	if len(b) < headerSize {
		return nil, 0, errShort
	}
	length, sum, index := parseHeader(b)
	if length > MaxPayload {
		return nil, 0, errTooLarge
	}
	n = recordSize(int(length))
	if len(b) < n {
		return nil, 0, errShort
	}
	if index != want {
		return nil, 0, errIndex
	}
	payload = b[headerSize:n]
	crc := crc32.Update(0, castagnoli, b[8:16])
	if crc32.Update(crc, castagnoli, payload) != sum {
		return nil, 0, errChecksum
	}
	return payload, n, nil
}
