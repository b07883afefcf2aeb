package wal

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCorruptActiveSegment damages the one segment of a log of 100
// records (the active one, every record fsynced by Close) in the middle:
// Open must skip the bad bytes and keep every record after them, keep a
// copy of the segment as it was, count exactly what it skipped, and a
// second Open must find nothing to repair. Only bad bytes with nothing
// valid after them are a torn tail, cut as before.
func TestCorruptActiveSegment(t *testing.T) {
	const n = 100
	at := func(i uint64) int { return int(recordOffset(1, i)) }
	size := func(from, to uint64) int64 { return int64(at(to+1) - at(from)) }
	garbage := []byte("\x13\x37 garbage in the middle of the segment \xff\xfe")
	tests := []struct {
		name    string
		mangle  func(b []byte) []byte
		lost    []uint64 // indexes gone
		files   []uint64 // segment files left, by first index
		skipped int64    // Recovery.SkippedBytes
		cut     int64    // Recovery.TruncatedBytes (a torn tail)
		cutRecs int
	}{{
		name:    "payload byte of record 10",
		mangle:  func(b []byte) []byte { b[at(10)+headerSize+3] ^= 0x01; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "length of record 10 grown",
		mangle:  func(b []byte) []byte { b[at(10)+1] ^= 0x01; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "length of record 10 past the file",
		mangle:  func(b []byte) []byte { b[at(10)+2] ^= 0x40; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "length of record 10 over the limit",
		mangle:  func(b []byte) []byte { b[at(10)+3] ^= 0x80; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "length of record 10 shrunk",
		mangle:  func(b []byte) []byte { b[at(10)] ^= 0x04; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "index of record 10",
		mangle:  func(b []byte) []byte { b[at(10)+8] ^= 0x02; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "checksum of record 10",
		mangle:  func(b []byte) []byte { b[at(10)+6] ^= 0x20; return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "records 10 to 12",
		mangle:  func(b []byte) []byte { b[at(10)+headerSize]++; b[at(11)+4]++; b[at(12)+1]++; return b },
		lost:    []uint64{10, 11, 12},
		files:   []uint64{1, 13},
		skipped: size(10, 12),
	}, {
		name:    "two bad regions: records 10 and 50",
		mangle:  func(b []byte) []byte { b[at(10)+headerSize+3] ^= 1; b[at(50)+5] ^= 1; return b },
		lost:    []uint64{10, 50},
		files:   []uint64{1, 11, 51},
		skipped: size(10, 10) + size(50, 50),
	}, {
		name: "zeros over records 10 to 12 (a lost page)",
		mangle: func(b []byte) []byte {
			clear(b[at(10) : at(12)+5])
			return b
		},
		lost:    []uint64{10, 11, 12},
		files:   []uint64{1, 13},
		skipped: size(10, 12),
	}, {
		name:    "garbage inserted after record 9",
		mangle:  func(b []byte) []byte { return slices.Concat(b[:at(10)], garbage, b[at(10):]) },
		files:   []uint64{1, 10},
		skipped: int64(len(garbage)),
	}, {
		name:    "garbage over the start of record 10",
		mangle:  func(b []byte) []byte { copy(b[at(10):], garbage); return b },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
	}, {
		name:    "first record",
		mangle:  func(b []byte) []byte { b[headerSize+1] ^= 0x01; return b },
		lost:    []uint64{1},
		files:   []uint64{2},
		skipped: size(1, 1),
	}, {
		name:    "garbage before the first record",
		mangle:  func(b []byte) []byte { return slices.Concat(garbage, b) },
		files:   []uint64{1},
		skipped: int64(len(garbage)),
	}, {
		name:    "second-to-last record",
		mangle:  func(b []byte) []byte { b[at(n-1)+5] ^= 0x01; return b },
		lost:    []uint64{n - 1},
		files:   []uint64{1, n},
		skipped: size(n-1, n-1),
	}, {
		name:    "record 10, and the last record torn",
		mangle:  func(b []byte) []byte { b[at(10)+headerSize+3] ^= 0x01; return b[:len(b)-7] },
		lost:    []uint64{10},
		files:   []uint64{1, 11},
		skipped: size(10, 10),
		cut:     size(n, n) - 7,
		cutRecs: 1,
	}, {
		// A torn tail, not corruption: cut, and its index reused.
		name:    "last record",
		mangle:  func(b []byte) []byte { b[at(n)+headerSize+3] ^= 0x01; return b },
		files:   []uint64{1},
		cut:     size(n, n),
		cutRecs: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, 1<<20, n)
			path := filepath.Join(dir, segmentName(1))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = tt.mangle(b)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			l, rec := openLog(t, dir, Options{Logger: logger})

			last := uint64(n)
			if tt.cutRecs > 0 { // every torn tail here is the last record
				last = n - 1
			}
			var want []uint64
			for i := uint64(1); i <= last; i++ {
				if !slices.Contains(tt.lost, i) {
					want = append(want, i)
				}
			}
			damaged := tt.skipped > 0
			var wantQ []string
			if damaged {
				wantQ = []string{path + ".corrupt"}
			}
			if !slices.Equal(rec.Quarantined, wantQ) || rec.SkippedBytes != tt.skipped || rec.LostRecords != uint64(len(tt.lost)) ||
				rec.TruncatedBytes != tt.cut || rec.TruncatedRecords != tt.cutRecs {
				t.Fatalf("recovery %+v; want quarantined %v, %d bytes and %d records skipped, %d bytes and %d records cut",
					rec, wantQ, tt.skipped, len(tt.lost), tt.cut, tt.cutRecs)
			}
			if damaged {
				if kept, err := os.ReadFile(wantQ[0]); err != nil || !bytes.Equal(kept, b) {
					t.Fatalf("the .corrupt copy does not hold the damaged segment as it was (%v)", err)
				}
				checkSkipLogged(t, logs.Bytes(), path, tt.lost)
			}
			var files []string
			for _, f := range tt.files {
				files = append(files, segmentName(f))
			}
			if got := segmentFiles(t, dir); !slices.Equal(got, files) {
				t.Fatalf("segment files %v, want %v", got, files)
			}
			if l.FirstIndex() != want[0] || l.LastIndex() != last {
				t.Fatalf("first %d last %d, want %d %d", l.FirstIndex(), l.LastIndex(), want[0], last)
			}
			checkRecords(t, readAll(t, l, l.FirstIndex()), want)
			if got, want := l.Size(), dirSize(t, dir); got != want {
				t.Fatalf("Size %d, files hold %d", got, want)
			}
			// A cursor saved in a gap still reads on from after it.
			for _, i := range tt.lost {
				if i < l.FirstIndex() {
					continue
				}
				k, _ := slices.BinarySearch(want, i)
				checkRecords(t, readAll(t, l, i), want[k:])
				if l.SizeFrom(i) != l.SizeFrom(want[k]) {
					t.Fatalf("SizeFrom(%d) %d, SizeFrom(%d) %d", i, l.SizeFrom(i), want[k], l.SizeFrom(want[k]))
				}
			}

			// Appends go on after the last record: no index a skipped
			// record held comes back.
			appendRange(t, l, last+1, last+5)
			want = append(want, seq(last+1, last+5)...)
			checkRecords(t, readAll(t, l, l.FirstIndex()), want)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, rec = openLog(t, dir, Options{})
			if !isZero(rec) {
				t.Fatalf("second Open repaired again: %+v", rec)
			}
			checkRecords(t, readAll(t, l, l.FirstIndex()), want)
		})
	}
}

// checkSkipLogged checks that Open logged, at error, each skipped index
// range with the file, its offset and the copy.
func checkSkipLogged(t *testing.T, logs []byte, path string, lost []uint64) {
	t.Helper()
	var ranges [][2]uint64
	for line := range bytes.Lines(logs) {
		var e struct {
			Level, Msg, File, Copy string
			Offset                 *int
			First                  uint64 `json:"first_index"`
			Last                   uint64 `json:"last_index"`
			Records                uint64
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.Msg != "wal: skipped corrupt records; kept the valid records after them" {
			continue
		}
		if e.Level != "ERROR" || e.File != path || e.Offset == nil || e.Copy != path+".corrupt" || e.Records != e.Last+1-e.First {
			t.Fatalf("skip logged as %s", line)
		}
		if e.Records > 0 {
			ranges = append(ranges, [2]uint64{e.First, e.Last})
		}
	}
	var want [][2]uint64
	for _, i := range lost {
		if k := len(want) - 1; k >= 0 && want[k][1] == i-1 {
			want[k][1] = i
		} else {
			want = append(want, [2]uint64{i, i})
		}
	}
	if !slices.Equal(ranges, want) {
		t.Fatalf("logged skipped ranges %v, want %v; log:\n%s", ranges, want, logs)
	}
}

// writeDamaged writes records 1..n into dir as one segment, flips a
// payload byte of each record in bad, and returns the damaged bytes.
func writeDamaged(t *testing.T, dir string, n uint64, bad ...uint64) []byte {
	t.Helper()
	var b []byte
	for i := uint64(1); i <= n; i++ {
		b = appendRecord(b, i, payloadFor(i))
	}
	for _, i := range bad {
		b[recordOffset(1, i)+headerSize+2] ^= 0x08
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSalvageInterrupted: a crash after the salvaged runs were written
// and before the damaged segment was cut leaves both, and perhaps a
// temporary file; the next Open must end where an uninterrupted one
// would, reusing the runs' files.
func TestSalvageInterrupted(t *testing.T) {
	done := t.TempDir()
	writeDamaged(t, done, 60, 10, 40)
	l, _ := openLog(t, done, Options{})
	l.Close()
	run11, err := os.ReadFile(filepath.Join(done, segmentName(11)))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	damaged := writeDamaged(t, dir, 60, 10, 40)
	if err := os.WriteFile(filepath.Join(dir, segmentName(11)), run11, 0o644); err != nil {
		t.Fatal(err)
	}
	// The copy was made, and the run 41-60 was being written when the
	// crash came.
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)+".corrupt"), damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(41)+tmpExt), []byte("half a run"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, rec := openLog(t, dir, Options{})
	wantQ := []string{filepath.Join(dir, segmentName(1)+".1.corrupt")}
	skipped := recordOffset(1, 11) - recordOffset(1, 10) + recordOffset(1, 41) - recordOffset(1, 40)
	if !slices.Equal(rec.Quarantined, wantQ) || rec.LostRecords != 2 || rec.SkippedBytes != skipped || rec.TruncatedBytes != 0 {
		t.Fatalf("recovery %+v, want %v quarantined, %d bytes and 2 records skipped", rec, wantQ, skipped)
	}
	if got, want := segmentFiles(t, dir), []string{segmentName(1), segmentName(11), segmentName(41)}; !slices.Equal(got, want) {
		t.Fatalf("segment files %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(41)+tmpExt)); !os.IsNotExist(err) {
		t.Fatalf("leftover temporary file: %v", err)
	}
	wantIdx := slices.Concat(seq(1, 9), seq(11, 39), seq(41, 60))
	checkRecords(t, readAll(t, l, 1), wantIdx)
	appendRange(t, l, 61, 62)
	l.Close()
	l, rec = openLog(t, dir, Options{})
	if !isZero(rec) {
		t.Fatalf("second Open repaired again: %+v", rec)
	}
	checkRecords(t, readAll(t, l, 1), append(wantIdx, 61, 62))
}

// TestSalvageNeverReusesIndexes: a file already where a salvaged run
// goes, with other records (only a hand-made directory has one), is set
// aside, and new records start past every index it held.
func TestSalvageNeverReusesIndexes(t *testing.T) {
	dir := t.TempDir()
	writeDamaged(t, dir, 30, 10)
	var other []byte
	for i := uint64(11); i <= 45; i++ {
		other = appendRecord(other, i, []byte("another record"))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(11)), other, 0o644); err != nil {
		t.Fatal(err)
	}
	l, rec := openLog(t, dir, Options{})
	wantQ := []string{filepath.Join(dir, segmentName(1)+".corrupt"), filepath.Join(dir, segmentName(11)+".corrupt")}
	if !slices.Equal(rec.Quarantined, wantQ) || rec.LostRecords != 1 {
		t.Fatalf("recovery %+v, want %v quarantined and 1 record lost", rec, wantQ)
	}
	if l.LastIndex() != 45 {
		t.Fatalf("LastIndex %d, want 45: the set-aside file held up to 45", l.LastIndex())
	}
	if i, err := l.Append(payloadFor(46)); err != nil || i != 46 {
		t.Fatalf("Append: %d %v, want 46", i, err)
	}
	checkRecords(t, readAll(t, l, 1), slices.Concat(seq(1, 9), seq(11, 30), []uint64{46}))
	l.Close()
	if _, rec := openLog(t, dir, Options{}); !isZero(rec) {
		t.Fatalf("second Open repaired again: %+v", rec)
	}
}

// TestSalvageSyncFails: when an fsync fails in the middle of a salvage,
// Open fails and the directory still holds every record; the next Open
// salvages them.
func TestSalvageSyncFails(t *testing.T) {
	for fail := 1; fail <= 4; fail++ { // the copy, run 41-60, run 11-39, the cut segment
		dir := t.TempDir()
		writeDamaged(t, dir, 60, 10, 40)
		calls := 0
		h := hooks{sync: func(f *os.File) error {
			if calls++; calls == fail {
				return os.ErrDeadlineExceeded
			}
			return f.Sync()
		}}
		if l, _, err := open(dir, Options{}, h); err == nil {
			l.Close()
			t.Fatalf("fsync %d failed and Open succeeded", fail)
		}
		l, _ := openLog(t, dir, Options{})
		checkRecords(t, readAll(t, l, 1), slices.Concat(seq(1, 9), seq(11, 39), seq(41, 60)))
		l.Close()
	}
}
