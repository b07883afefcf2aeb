package faults

// A byte of the disk buffer changed by the disk while the agent is down:
// not a torn tail (valid records follow the damaged one), so recovery
// must skip that one record, keep every record after it, and say so.
//
// The scenario finds the buffer's segment files by walking
// data_dir/buffer for *.wal files and damages the newest one (by
// modification time, then name), so that it does not depend on how the
// buffer lays its logs out. It reads entries as agent/pipeline writes
// them (entry.go): version u8 (2) | feed | seq | sinks | position | point
// count | points, with uvarint lengths and counts, and points in the
// plugin wire format. Each sink has a log of its own, so the damaged
// record is lost to one sink only.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/pointcodec"
)

// 8. A byte flipped in the middle of the buffer's active segment. Both
// SQLite sinks are held up (the test takes their write locks) while the
// feed goes on, so that the records appended meanwhile are written by
// no sink; then the agent is killed, a payload byte of one of those
// records, with valid records after it, is flipped, and the agent is
// started again.
//
// Recovery skips that record and keeps the ones after it, so the feed
// resumes from the newest record's position. A Binance position is the
// last id up to which every id was emitted, which can lag the ids a
// record holds; the plugin backfills everything after it. So the ids of
// the damaged record at or below the resume position are lost to a sink
// that had not written the record (unless an earlier record had brought
// them: after a restart the plugin fetches again what is above its
// position), and those above come again. Every
// other trade and aggregate trade must land in every sink exactly once;
// each sink lacks exactly the lost ids or (had it written the record)
// nothing, at least one lacks them, and the agent's log reports the
// skipped record (one record, its index), the copy of the segment it
// kept, and the loss.
func TestFlippedBufferByte(t *testing.T) {
	t.Parallel()
	r := newRig(t, "8 flipped buffer byte", setup{second: true, segmentBytes: 4 << 20})
	r.begin()
	bufDir := filepath.Join(r.a.dir, "buffer")
	var flips []flipped
	for i := range pick(1, 3) {
		r.a.sleep(r.between(300*time.Millisecond, 1500*time.Millisecond))
		unlockFirst, unlockSecond := r.sqlite.lock(t), r.second.lock(t)
		written := lastIndexes(t, bufDir)
		r.a.sleep(2 * time.Second)
		r.a.kill()
		unlockFirst()
		unlockSecond()
		f := flipMiddle(t, bufDir, written, r.rng)
		r.notLostIfHeld(f)
		t.Logf("flip %d: %s", i+1, f)
		flips = append(flips, f)
		r.a.start()
		r.a.waitRunning()
	}
	r.finishFlipped(flips)
}

// notLostIfHeld takes out of f.lost the trades the sink whose log holds
// the damaged record already has: an earlier record delivered them (after
// an earlier restart the plugin fetches again the trades above its
// resume position, which a record written before may hold), so skipping
// the damaged one loses nothing of them. The agent is stopped, so what
// the store holds now is what it held before the flip.
func (r *rig) notLostIfHeld(f flipped) {
	for _, st := range []sqliteStore{r.sqlite, *r.second} {
		if !strings.Contains(f.file, string(filepath.Separator)+filepath.Join("sinks", st.sink())+string(filepath.Separator)) {
			continue
		}
		held := map[[2]string]map[int64]int64{}
		for id := range f.lost {
			k := [2]string{id.table, id.symbol}
			if held[k] == nil {
				for _, sm := range streams {
					if sm.table == id.table {
						held[k] = st.ids(r.t, sm.table, sm.id, id.symbol)
					}
				}
			}
			if held[k][id.id] > 0 {
				delete(f.lost, id)
			}
		}
	}
}

// flipped is one damaged record.
type flipped struct {
	file   string
	index  uint64
	offset int
	ids    map[tradeID]bool // its trades and aggregate trades
	lost   map[tradeID]bool // those at or below the resume position
	resume uint64           // the record the feed resumes from
}

func (f flipped) String() string {
	return fmt.Sprintf("%s: a payload byte of record %d (at %d) flipped; %d trade ids, %d at or below the position of record %d",
		f.file, f.index, f.offset, len(f.ids), len(f.lost), f.resume)
}

// tradeID is one trade or aggregate trade: a row of a stream's table.
type tradeID struct {
	table, symbol string
	id            int64
}

// walRecord is one whole record of a segment file.
type walRecord struct {
	index      uint64
	start, end int
}

// walRecords lists the whole records of a segment's bytes, up to the
// first that is partial (a file the agent is still writing).
func walRecords(b []byte) []walRecord {
	var out []walRecord
	for off := 0; off+walHeader <= len(b); {
		end := off + walHeader + int(binary.LittleEndian.Uint32(b[off:]))
		if end > len(b) {
			break
		}
		out = append(out, walRecord{recordIndex(b, off), off, end})
		off = end
	}
	return out
}

// segmentFiles lists every *.wal file under the buffer directory.
func segmentFiles(t *testing.T, bufDir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(bufDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(path, ".wal") {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walking the buffer: %v", err)
	}
	return out
}

// lastIndexes returns the index of the last whole record of each
// segment file under bufDir.
func lastIndexes(t *testing.T, bufDir string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, path := range segmentFiles(t, bufDir) {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if recs := walRecords(b); len(recs) > 0 {
			out[path] = recs[len(recs)-1].index
		}
	}
	return out
}

// flipMiddle flips a payload byte of a record in the middle of the newest
// segment file under bufDir: one appended after written (what each file
// held when the sinks were held up), with records after it, and with
// trades at or below the position the feed will resume from without it.
func flipMiddle(t *testing.T, bufDir string, written map[string]uint64, rng *rand.Rand) flipped {
	t.Helper()
	segs := segmentFiles(t, bufDir)
	if len(segs) == 0 {
		t.Fatalf("no *.wal files under %s", bufDir)
	}
	mtime := func(path string) time.Time {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	slices.SortFunc(segs, func(a, b string) int {
		if c := mtime(a).Compare(mtime(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	path := segs[len(segs)-1]

	// Every entry of the log the file belongs to (its directory), for the
	// positions: the feed resumes from the newest one's.
	type entryAt struct {
		index uint64
		ids   map[tradeID]bool
		pos   map[string]map[string]int64 // stream, symbol: id
	}
	var entries []entryAt
	var b []byte
	for _, seg := range segmentFiles(t, filepath.Dir(path)) {
		raw, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if seg == path {
			b = raw
		}
		for _, rec := range walRecords(raw) {
			ids, pos, err := parseEntry(raw[rec.start+walHeader : rec.end])
			if err != nil {
				t.Fatalf("%s: record %d: %v", seg, rec.index, err)
			}
			entries = append(entries, entryAt{rec.index, ids, pos})
		}
	}

	recs := walRecords(b)
	var candidates []flipped
	for _, rec := range recs[:max(len(recs)-1, 0)] { // not the last: valid records must follow
		if rec.index <= written[path] {
			continue
		}
		f := flipped{file: path, index: rec.index, offset: rec.start, lost: map[tradeID]bool{}}
		for _, e := range entries {
			switch {
			case e.index == rec.index:
				f.ids = e.ids
			case e.pos != nil && e.index > f.resume:
				f.resume = e.index // the newest position but this record's
			}
		}
		var resume map[string]map[string]int64
		for _, e := range entries {
			if e.index == f.resume {
				resume = e.pos
			}
		}
		for id := range f.ids {
			if id.id <= resume[streamOf(id.table)][id.symbol] {
				f.lost[id] = true
			}
		}
		if len(f.lost) > 0 {
			candidates = append(candidates, f)
		}
	}
	if len(candidates) == 0 {
		t.Fatalf("%s: no record appended while the sinks were held up (after %d) with records after it and trades at or below the resume position",
			path, written[path])
	}
	f := candidates[len(candidates)/2]
	k := slices.IndexFunc(recs, func(r walRecord) bool { return r.index == f.index })
	at := recs[k].start + walHeader + rng.IntN(recs[k].end-recs[k].start-walHeader)
	b[at] ^= 1 << rng.IntN(8)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// streamOf is the stream name (as in a Binance position) of a table.
func streamOf(table string) string {
	for _, sm := range streams {
		if sm.table == table {
			return sm.name
		}
	}
	return ""
}

// parseEntry decodes a buffer entry and returns its trades and aggregate
// trades, and its feed position (nil if it has none) as the Binance
// plugin writes it: {"v":1,"market":...,"trade":{symbol: id},"aggTrade":{...}}.
func parseEntry(b []byte) (map[tradeID]bool, map[string]map[string]int64, error) {
	if len(b) == 0 || b[0] != 2 {
		return nil, nil, fmt.Errorf("buffer entry of an unknown version (%d bytes)", len(b))
	}
	b = b[1:]
	errEntry := errors.New("malformed buffer entry")
	uvarint := func() (uint64, error) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, errEntry
		}
		b = b[k:]
		return v, nil
	}
	str := func() ([]byte, error) { // length-prefixed
		n, err := uvarint()
		if err != nil || n > uint64(len(b)) {
			return nil, errEntry
		}
		v := b[:n]
		b = b[n:]
		return v, nil
	}
	if _, err := str(); err != nil { // feed
		return nil, nil, err
	}
	if _, err := uvarint(); err != nil { // the entry's number within its feed
		return nil, nil, err
	}
	sinks, err := uvarint()
	for range sinks {
		if err == nil {
			_, err = str()
		}
	}
	var raw []byte
	if err == nil {
		raw, err = str()
	}
	var n uint64
	if err == nil {
		n, err = uvarint()
	}
	if err != nil {
		return nil, nil, err
	}
	var pos map[string]map[string]int64
	if len(raw) > 0 {
		var pj struct {
			V        int              `json:"v"`
			Trade    map[string]int64 `json:"trade"`
			AggTrade map[string]int64 `json:"aggTrade"`
		}
		if err := json.Unmarshal(raw, &pj); err != nil || pj.V != 1 {
			return nil, nil, fmt.Errorf("feed position %q: %v", raw, err)
		}
		pos = map[string]map[string]int64{streamTrade: pj.Trade, streamAgg: pj.AggTrade}
	}
	points, err := pointcodec.DecodePoints(b, int(n))
	if err != nil {
		return nil, nil, err
	}
	ids := map[tradeID]bool{}
	for _, p := range points {
		for _, sm := range streams {
			if p.Measurement != sm.table {
				continue
			}
			sym, _ := p.Tag("symbol")
			v, ok := p.Field(sm.id)
			if !ok {
				return nil, nil, fmt.Errorf("a %s point without %s", sm.table, sm.id)
			}
			ids[tradeID{sm.table, sym, v.Int()}] = true
		}
	}
	return ids, pos, nil
}

// finishFlipped ends the scenario like finish, but with the damaged
// records' trades allowed, and expected, to be missing.
func (r *rig) finishFlipped(flips []flipped) {
	t := r.t
	t.Helper()
	skipped := map[tradeID]bool{}
	for _, f := range flips {
		maps.Copy(skipped, f.lost)
	}
	r.quiet()
	r.x.halt()
	gen := r.x.generated()
	stores := []store{r.sqlite, *r.second}

	// Wait (bounded) until each sink holds all but the skipped trades.
	deadline := time.Now().Add(landTimeout)
	for {
		done := true
		for _, st := range stores {
			for _, sm := range streams {
				got := st.distinct(t, sm.table, sm.id)
				for _, sym := range symbols {
					done = done && got[sym]+int64(len(skippedOf(skipped, sm.table, sym))) >= gen[sm.name][sym].count()
				}
			}
		}
		if done {
			break
		}
		if r.a.exited() {
			t.Fatalf("sluice exited (%v) while the sinks caught up", r.a.proc.ExitErr())
		}
		if time.Now().After(deadline) {
			t.Errorf("the sinks did not catch up within %s; status: %s", landTimeout, statusJSON(r.a.last))
			break
		}
		r.a.sleep(5 * pollEvery)
	}
	r.a.stop()

	lacking := make([]map[tradeID]bool, len(stores))
	for k, st := range stores {
		res := result{Scenario: r.name, Sink: st.sink(), Elapsed: time.Since(r.began)}
		lacking[k] = map[tradeID]bool{}
		for _, sm := range streams {
			for _, sym := range symbols {
				tr := gen[sm.name][sym]
				ids := st.ids(t, sm.table, sm.id, sym)
				res.Generated += tr.count()
				for id := tr.first; id <= tr.last; id++ {
					n := ids[id]
					switch {
					case n == 0 && skipped[tradeID{sm.table, sym, id}]:
						lacking[k][tradeID{sm.table, sym, id}] = true
						res.Missing++
					case n == 0:
						t.Errorf("sink %s: %s %d of %s is missing and was in no damaged record", st.sink(), sm.name, id, sym)
						res.Missing++
					case n > 1:
						t.Errorf("sink %s: %s %d of %s landed %d times", st.sink(), sm.name, id, sym, n)
						res.Duplicated += n - 1
					}
					if n > 0 {
						res.Landed++
					}
				}
				for id := range ids {
					if id < tr.first || id > tr.last {
						t.Errorf("sink %s: %s %d of %s was never generated", st.sink(), sm.name, id, sym)
						res.Unexpected++
					}
				}
			}
		}
		r.results = append(r.results, res)
	}
	record(r.results...)
	t.Logf("%s:\n%s", r.name, formatResults(r.results))

	// Each damaged record: no sink wrote it before the kill, so at least
	// one sink (the one its log belongs to, or both with one shared log)
	// lacks all its lost ids; no sink lacks part of them.
	for _, f := range flips {
		all := false
		for k, st := range stores {
			n := 0
			for id := range f.lost {
				if lacking[k][id] {
					n++
				}
			}
			if n != 0 && n != len(f.lost) {
				t.Errorf("sink %s lacks %d of the %d lost trades of damaged record %d", st.sink(), n, len(f.lost), f.index)
			}
			all = all || n == len(f.lost)
		}
		if !all {
			t.Errorf("every sink has the lost trades of damaged record %d: it was not skipped (cut and fetched again?)", f.index)
		}
	}
	r.checkFlipsLogged(flips)
}

// skippedOf returns the ids of one table and symbol in skipped.
func skippedOf(skipped map[tradeID]bool, table, symbol string) []int64 {
	var out []int64
	for id := range skipped {
		if id.table == table && id.symbol == symbol {
			out = append(out, id.id)
		}
	}
	return out
}

var (
	skipLine = regexp.MustCompile(`level=ERROR msg="wal: skipped corrupt records; kept the valid records after them" .*?file=(\S+) offset=(\d+) bytes=\d+ records=(\d+) first_index=(\d+) last_index=(\d+) .*copy=(\S+)`)
	lostLine = regexp.MustCompile(`msg="disk buffer repaired on open" .*lost_records=(\d+)`)
)

// checkFlipsLogged checks that the run after each flip logged the skip
// (file, offset, one record, its index, the copy, which exists) and the
// loss in the buffer's recovery report, and never cut a torn tail.
func (r *rig) checkFlipsLogged(flips []flipped) {
	t := r.t
	runs := r.a.runs[len(r.a.runs)-len(flips):]
	for k, f := range flips {
		log := runs[k].Log()
		m := skipLine.FindAllStringSubmatch(log, -1)
		if len(m) != 1 {
			t.Errorf("run after flip %d logged %d skips of corrupt records, want 1:\n%s", k+1, len(m), grepLog(log, "wal:"))
			continue
		}
		idx := strconv.FormatUint(f.index, 10)
		if m[0][1] != f.file || m[0][2] != strconv.Itoa(f.offset) || m[0][3] != "1" || m[0][4] != idx || m[0][5] != idx {
			t.Errorf("flip %d (%s) logged as %s", k+1, f, m[0][0])
		}
		if _, err := os.Stat(m[0][6]); err != nil {
			t.Errorf("flip %d: the copy of the damaged segment: %v", k+1, err)
		}
		if l := lostLine.FindStringSubmatch(log); l == nil || l[1] != "1" {
			t.Errorf("run after flip %d did not report 1 lost record on opening the buffer:\n%s", k+1, grepLog(log, "buffer"))
		}
		if strings.Contains(log, "wal: cut a torn or corrupt tail") {
			t.Errorf("run after flip %d cut a torn tail:\n%s", k+1, grepLog(log, "wal:"))
		}
	}
}

// grepLog returns the lines of log that contain s.
func grepLog(log, s string) string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
