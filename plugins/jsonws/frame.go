package jsonws

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// errTooLarge is a frame, or its decompressed content, over its cap.
var errTooLarge = errors.New("over the size cap")

// readCapped reads all of r if it holds at most max bytes. Past max it
// stops reading and returns errTooLarge: at most max+1 bytes are ever
// held, whatever r would yield.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// decompress returns a binary frame's JSON content under mode, refusing
// (errTooLarge) content that inflates past max: the reader stops at the
// cap, so a compression bomb costs at most max bytes of memory.
//
// auto recognises a gzip header (1f 8b), a zlib header, and a frame that
// already looks like JSON; anything else is taken as raw DEFLATE. deflate
// accepts zlib-wrapped and raw DEFLATE, as servers differ.
func decompress(data []byte, mode string, max int64) ([]byte, error) {
	switch mode {
	case DecompressNone:
		return data, nil
	case DecompressGzip:
		return gunzip(data, max)
	case DecompressDeflate:
		if isZlib(data) {
			return inflateZlib(data, max)
		}
		return inflateRaw(data, max)
	}
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return gunzip(data, max)
	case isZlib(data):
		return inflateZlib(data, max)
	case looksJSON(data):
		return data, nil
	}
	return inflateRaw(data, max)
}

func gunzip(data []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	return inflated(zr, max, "gzip")
}

func inflateZlib(data []byte, max int64) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	defer zr.Close()
	return inflated(zr, max, "zlib")
}

func inflateRaw(data []byte, max int64) ([]byte, error) {
	fr := flate.NewReader(bytes.NewReader(data))
	defer fr.Close()
	return inflated(fr, max, "deflate")
}

func inflated(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := readCapped(r, max)
	if err != nil && !errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, err
}

// isZlib checks the two-byte zlib header: deflate method, a window size
// DEFLATE allows, and the header checksum.
func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

func looksJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[', '"':
			return true
		}
		return false
	}
	return false
}
