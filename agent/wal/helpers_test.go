package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// payloadFor is the payload the tests append as record i: its length
// varies with i so that records straddle read chunks and segment ends.
func payloadFor(i uint64) []byte {
	head := fmt.Sprintf("record %d|", i)
	return []byte(head + strings.Repeat(string(rune('a'+i%26)), int(i*37%300)))
}

func openLog(t testing.TB, dir string, opts Options) (*Log, Recovery) {
	t.Helper()
	return openHooked(t, dir, opts, hooks{})
}

func openHooked(t testing.TB, dir string, opts Options, h hooks) (*Log, Recovery) {
	t.Helper()
	l, rec, err := open(dir, opts, h)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, rec
}

// appendRange appends payloadFor(i) for i in [from, to] and checks each
// gets index i.
func appendRange(t testing.TB, l *Log, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		got, err := l.Append(payloadFor(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if got != i {
			t.Fatalf("Append got index %d, want %d", got, i)
		}
	}
}

type record struct {
	index   uint64
	payload []byte
}

// readAll reads from index from until io.EOF.
func readAll(t testing.TB, l *Log, from uint64) []record {
	t.Helper()
	r, err := l.NewReader(from)
	if err != nil {
		t.Fatalf("NewReader(%d): %v", from, err)
	}
	defer r.Close()
	var out []record
	for {
		i, p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		out = append(out, record{i, bytes.Clone(p)})
	}
}

// checkRecords checks that recs are payloadFor(i) for i in want, in order.
func checkRecords(t testing.TB, recs []record, want []uint64) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("read %d records, want %d", len(recs), len(want))
	}
	for k, r := range recs {
		if r.index != want[k] {
			t.Fatalf("record %d has index %d, want %d", k, r.index, want[k])
		}
		if !bytes.Equal(r.payload, payloadFor(r.index)) {
			t.Fatalf("record %d: payload %q, want %q", r.index, r.payload, payloadFor(r.index))
		}
	}
}

func seq(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// segmentFiles lists the segment file names in dir, oldest first.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range m {
		m[k] = filepath.Base(m[k])
	}
	slices.Sort(m)
	return m
}

// dirSize is the total size of the segment files in dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range segmentFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
