package wire

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/internal/fixture"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// frameFiles returns the single-message fixture files.
func frameFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/frames/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/frames")
	}
	return files
}

// fixtureParser returns the parser a fixture file's frames are read with:
// the market is the file name's prefix (control and server frames are
// market-neutral; spot is as good as any). Bare frames of the partial-depth
// files came from <symbol>@depth<levels> connections, which is what the
// Stream hint says.
func fixtureParser(t testing.TB, file string) *Parser {
	base := filepath.Base(file)
	m, err := market.ParseMarket(strings.SplitN(base, "_", 2)[0])
	if err != nil {
		m = market.Spot
	}
	p := NewParser(m)
	if strings.Contains(base, "depth_partial") {
		p.Stream = "btcusdt@depth20"
	}
	return p
}

// TestGolden parses every line of every fixture and compares a readable
// rendering of the result with testdata/golden/<file>.golden.
func TestGolden(t *testing.T) {
	for _, file := range frameFiles(t) {
		base := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(base, func(t *testing.T) {
			var out strings.Builder
			p := fixtureParser(t, file)
			for i, line := range fixture.ReadLines(t, file) {
				fmt.Fprintf(&out, "== line %d\n", i+1)
				switch {
				case strings.HasPrefix(base, "rest_depth_snapshot"):
					s, err := ParseDepthSnapshot(line)
					renderSnapshot(&out, s, err)
				case strings.HasPrefix(base, "rest_aggTrades"):
					// The fixture is GET /fapi/v1/aggTrades?symbol=BTCUSDT.
					rp := NewParser(market.USDM)
					pts, ids, err := rp.ParseAggTrades("BTCUSDT", line, fixture.Received, nil)
					if err != nil {
						fmt.Fprintf(&out, "error: %v\n", err)
					}
					fmt.Fprintf(&out, "ids: %v\n", ids)
					renderPoints(&out, pts)
				default:
					pts, ev, err := p.Parse(line, fixture.Received, nil)
					if err != nil {
						fmt.Fprintf(&out, "error: %v\n", err)
					}
					renderEvent(&out, ev)
					renderPoints(&out, pts)
					fixture.CheckPoints(t, p.Market(), pts)
				}
			}
			golden := filepath.Join("testdata", "golden", base+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

func renderEvent(w *strings.Builder, ev Event) {
	fmt.Fprintf(w, "event: %v", ev.Kind)
	if ev.Stream != "" {
		fmt.Fprintf(w, " stream=%s", ev.Stream)
	}
	if ev.Symbol != "" {
		fmt.Fprintf(w, " symbol=%s", ev.Symbol)
	}
	if ev.Name != "" {
		fmt.Fprintf(w, " name=%s", ev.Name)
	}
	if !ev.Time.IsZero() {
		fmt.Fprintf(w, " time=%s", fmtTime(ev.Time))
	}
	if ev.ID != 0 {
		fmt.Fprintf(w, " id=%d", ev.ID)
	}
	if ev.Kind == EventAggTrade {
		fmt.Fprintf(w, " first=%d last=%d", ev.FirstTradeID, ev.LastTradeID)
	}
	if ev.Result != "" {
		fmt.Fprintf(w, " result=%s", ev.Result)
	}
	if ev.Err != nil {
		fmt.Fprintf(w, " code=%d msg=%q", ev.Err.Code, ev.Err.Msg)
	}
	w.WriteString("\n")
	if ev.Kind == EventDepthUpdate {
		d := ev.Depth
		fmt.Fprintf(w, "depth: symbol=%s time=%s U=%d u=%d pu=%d\n", d.Symbol, fmtTime(d.EventTime), d.FirstID, d.FinalID, d.PrevFinalID)
		fmt.Fprintf(w, "  bids: %s\n  asks: %s\n", fmtLevels(d.Bids), fmtLevels(d.Asks))
	}
}

func renderSnapshot(w *strings.Builder, s market.DepthSnapshot, err error) {
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	fmt.Fprintf(w, "snapshot: lastUpdateId=%d\n  bids: %s\n  asks: %s\n", s.LastUpdateID, fmtLevels(s.Bids), fmtLevels(s.Asks))
}

func fmtLevels(ls []market.Level) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s@%d:%s", fmtFloat(l.Price), l.Key, fmtFloat(l.Quantity)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// renderPoints writes one point per line, line-protocol style:
// measurement,tags fields time [received].
func renderPoints(w *strings.Builder, pts []sluice.Point) {
	for _, pt := range pts {
		w.WriteString(pt.Measurement)
		for _, tg := range pt.Tags {
			fmt.Fprintf(w, ",%s=%s", tg.Key, tg.Value)
		}
		for i, f := range pt.Fields {
			sep := ","
			if i == 0 {
				sep = " "
			}
			fmt.Fprintf(w, "%s%s=%s", sep, f.Key, fmtValue(f.Value))
		}
		fmt.Fprintf(w, " %s", fmtTime(pt.Time))
		if pt.Time.Equal(pt.Received) {
			w.WriteString(" (receive time)")
		} else if !pt.Received.Equal(fixture.Received) {
			fmt.Fprintf(w, " received=%s", fmtTime(pt.Received))
		}
		w.WriteString("\n")
	}
}

func fmtValue(v sluice.Value) string {
	switch v.Kind() {
	case sluice.KindFloat:
		return fmtFloat(v.Float())
	case sluice.KindInt:
		return strconv.FormatInt(v.Int(), 10) + "i"
	case sluice.KindUint:
		return strconv.FormatUint(v.Uint(), 10) + "u"
	case sluice.KindString:
		return strconv.Quote(v.Str())
	case sluice.KindBool:
		return strconv.FormatBool(v.Bool())
	}
	return v.String()
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// diffLines shows the first differing lines of two texts.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

// TestFixturesComplete fails when the shared data has a single-message file
// that testdata/frames lacks, or a copy that went stale.
func TestFixturesComplete(t *testing.T) {
	shared, err := filepath.Glob(filepath.Join(fixture.SharedDir, "*.jsonl"))
	if err != nil || len(shared) == 0 {
		t.Skipf("shared data not found at %s: nothing to compare the fixtures with", fixture.SharedDir)
	}
	for _, f := range shared {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "frames", filepath.Base(f)))
		if err != nil {
			t.Errorf("fixture missing: %v", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/frames/%s differs from %s", filepath.Base(f), f)
		}
	}
}
