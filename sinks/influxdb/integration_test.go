package influxdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/testinflux"
	"github.com/sluicehq/sluice/sinks"
)

// Tests against a real InfluxDB 1.8 (see internal/testinflux). They skip
// when influxd is not installed, unless SLUICE_REQUIRE_INFLUXD=1.

func realSink(t testing.TB, srv *testinflux.Server, gz bool) *Sink {
	t.Helper()
	s := New(Config{URL: srv.URL(), Org: "-", Bucket: testinflux.Bucket, Token: srv.Token(), Gzip: gz}, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// pointKey identifies a stored point: measurement, non-empty tags, time.
func pointKey(m string, tags map[string]string, ns int64) string {
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%q", m)
	for _, k := range keys {
		fmt.Fprintf(&sb, " %q=%q", k, tags[k])
	}
	fmt.Fprintf(&sb, " @%d", ns)
	return sb.String()
}

// nastyPoints covers every field type and names that need escaping.
func nastyPoints() []sluice.Point {
	measurements := []string{
		"plain", "with space", "with,comma", "with=equals", `with"quote`,
		"unicodé ☃", `back\slash`, "trailing ", " leading", "m#hash", "_under", "a'b",
	}
	tagSets := [][]sluice.Tag{
		{{Key: "tag key", Value: "tag value"}},
		{{Key: "k,=", Value: "v,= x"}, {Key: "z", Value: ""}},
		{{Key: `"q"`, Value: `"quoted"`}, {Key: `b\s`, Value: `v\x`}},
		{{Key: "üñí", Value: "日本 語"}},
	}
	floats := []float64{0.1, 1e300, -5e-324, 1.0000000000000002, math.Copysign(0, -1), -123.456, math.MaxFloat64, 3}
	ints := []int64{math.MinInt64, math.MaxInt64, -1, 0, 42}
	uints := []uint64{0, 1, math.MaxInt64, 1 << 40}
	strs := []string{
		"", `with "quotes"`, `back\slash`, `ends with \`, "new\nline", "crlf\r\n", `literal \n`,
		"tab\there", "comma, space = equals", "unicode ☃ 😀 日本", "'single'", `\"`, "#not a comment",
	}
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var ps []sluice.Point
	n := 0
	for mi, m := range measurements {
		for ti, tags := range tagSets {
			for k := range 3 {
				tagsCopy := slices.Clone(tags)
				slices.SortFunc(tagsCopy, func(a, b sluice.Tag) int { return strings.Compare(a.Key, b.Key) })
				ps = append(ps, sluice.Point{
					Measurement: m,
					Tags:        tagsCopy,
					Fields: []sluice.Field{
						{Key: "f", Value: sluice.Float(floats[n%len(floats)])},
						{Key: "i", Value: sluice.Int(ints[n%len(ints)])},
						{Key: "u", Value: sluice.Uint(uints[n%len(uints)])},
						{Key: "s", Value: sluice.String(strs[n%len(strs)])},
						{Key: "b", Value: sluice.Bool(n%2 == 0)},
						{Key: "field key, with=all", Value: sluice.String(strs[(n+mi)%len(strs)])},
						{Key: `fq"`, Value: sluice.Float(float64(ti) + 0.25)},
					},
					Time: base.Add(time.Duration(k)*time.Second + time.Duration(n)*time.Nanosecond),
				})
				n++
			}
		}
	}
	return ps
}

// expected maps pointKey to fields as the storage should hand them back:
// uints as int64.
func expected(ps []sluice.Point) map[string]map[string]any {
	want := map[string]map[string]any{}
	for _, p := range ps {
		tags := map[string]string{}
		for _, t := range p.Tags {
			tags[t.Key] = t.Value
		}
		fields := map[string]any{}
		for _, f := range p.Fields {
			v := f.Value.Any()
			if u, ok := v.(uint64); ok {
				v = int64(u)
			}
			fields[f.Key] = v
		}
		want[pointKey(p.Measurement, tags, p.Time.UnixNano())] = fields
	}
	return want
}

func TestRealRoundTrip(t *testing.T) {
	srv := testinflux.Start(t)
	s := realSink(t, srv, true)
	ps := nastyPoints()
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	want := expected(ps)

	// Field types, by InfluxQL.
	types := map[string]string{}
	for _, series := range srv.Query(`SHOW FIELD KEYS`) {
		for _, row := range series.Values {
			types[series.Name+"."+row[0].(string)] = row[1].(string)
		}
	}
	wantTypes := map[string]string{"f": "float", "i": "integer", "u": "integer", "s": "string", "b": "boolean", "field key, with=all": "string", `fq"`: "float"}
	for _, p := range ps {
		for k, typ := range wantTypes {
			if got := types[p.Measurement+"."+k]; got != typ {
				t.Errorf("measurement %q field %q: type %q, want %q", p.Measurement, k, got, typ)
			}
		}
	}

	t.Run("InfluxQL", func(t *testing.T) {
		got := map[string]map[string]any{}
		for _, series := range srv.Query(`SELECT * FROM /.*/ GROUP BY *`) {
			for _, row := range series.Values {
				ns, err := row[0].(json.Number).Int64()
				if err != nil {
					t.Fatal(err)
				}
				fields := map[string]any{}
				for c, col := range series.Columns[1:] {
					v := row[c+1]
					if v == nil {
						continue
					}
					fields[col] = fromJSON(t, v, types[series.Name+"."+col])
				}
				got[pointKey(series.Name, series.Tags, ns)] = fields
			}
		}
		compare(t, got, want)
	})

	t.Run("Flux", func(t *testing.T) {
		got := map[string]map[string]any{}
		recs := srv.QueryFlux(`from(bucket: "` + testinflux.Bucket + `") |> range(start: 2026-01-01T00:00:00Z, stop: 2027-01-01T00:00:00Z)`)
		for _, r := range recs {
			tags := map[string]string{}
			for k, v := range r {
				switch k {
				case "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement":
				default:
					tags[k], _ = v.(string)
				}
			}
			key := pointKey(r["_measurement"].(string), tags, r["_time"].(time.Time).UnixNano())
			if got[key] == nil {
				got[key] = map[string]any{}
			}
			got[key][r["_field"].(string)] = r["_value"]
		}
		// Annotated CSV, Flux's wire format, cannot carry two things
		// the storage holds (InfluxQL above reads both back exactly):
		// an empty string arrives as null, and encoding/csv drops the
		// \r of a \r\n inside a quoted value. Compare through that
		// lens, then check both values on the server side with Flux.
		for _, fields := range want {
			for k, v := range fields {
				if s, ok := v.(string); ok {
					if s == "" {
						fields[k] = nil
					} else {
						fields[k] = strings.ReplaceAll(s, "\r\n", "\n")
					}
				}
			}
		}
		compare(t, got, want)

		wantCount := map[string]int64{}
		for _, p := range ps {
			for _, f := range p.Fields {
				if f.Key == "s" {
					wantCount[f.Value.Str()]++
				}
			}
		}
		for _, v := range []string{"", "crlf\r\n"} {
			flux := `from(bucket: "` + testinflux.Bucket + `") |> range(start: 2026-01-01T00:00:00Z, stop: 2027-01-01T00:00:00Z)
				|> filter(fn: (r) => r._field == "s" and r._value == ` + strconv.Quote(v) + `) |> group() |> count()`
			recs := srv.QueryFlux(flux)
			if len(recs) != 1 || recs[0]["_value"] != wantCount[v] {
				t.Errorf("flux count of s == %q: %v, want %d", v, recs, wantCount[v])
			}
		}
	})
}

// fromJSON turns an InfluxQL JSON value into the Go type of its field.
func fromJSON(t *testing.T, v any, typ string) any {
	t.Helper()
	switch typ {
	case "float":
		f, err := strconv.ParseFloat(string(v.(json.Number)), 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	case "integer":
		i, err := strconv.ParseInt(string(v.(json.Number)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	return v
}

func compare(t *testing.T, got, want map[string]map[string]any) {
	t.Helper()
	for k, wf := range want {
		gf, ok := got[k]
		if !ok {
			t.Errorf("missing point %s", k)
			continue
		}
		for fk, wv := range wf {
			gv := gf[fk]
			same := gv == wv
			if wfl, ok := wv.(float64); ok {
				gfl, ok := gv.(float64)
				same = ok && math.Float64bits(gfl) == math.Float64bits(wfl)
			}
			if !same {
				t.Errorf("point %s field %q: got %#v, want %#v", k, fk, gv, wv)
			}
		}
		if len(gf) != len(wf) {
			t.Errorf("point %s: %d fields, want %d", k, len(gf), len(wf))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d points stored, want %d", len(got), len(want))
	}
}

func TestRealRejections(t *testing.T) {
	srv := testinflux.Start(t)

	// The premise of writing uints as ints: 1.8 refuses the 'u' suffix.
	resp, err := http.Post(srv.URL()+"/api/v2/write?bucket="+testinflux.Bucket, "text/plain", strings.NewReader("premise v=1u 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("1.8 answered %s to a uint, want 400", resp.Status)
	}

	s := realSink(t, srv, true)
	at := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	mk := func(i int, fields ...sluice.Field) sluice.Point {
		return sluice.Point{Measurement: "r", Tags: []sluice.Tag{{Key: "n", Value: strconv.Itoa(i)}}, Fields: fields, Time: at}
	}
	if err := s.Write(context.Background(), []sluice.Point{mk(0, sluice.Field{Key: "v", Value: sluice.Float(1)})}); err != nil {
		t.Fatal(err)
	}
	var batch []sluice.Point
	for i := 1; i <= 40; i++ {
		batch = append(batch, mk(i, sluice.Field{Key: "v", Value: sluice.Float(float64(i))}))
	}
	batch[4] = mk(5, sluice.Field{Key: "v", Value: sluice.String("conflict")})          // 1.8: field type conflict
	batch[20] = mk(21, sluice.Field{Key: "time", Value: sluice.Float(1)})               // 1.8: invalid field name
	batch[30] = mk(31, sluice.Field{Key: "v", Value: sluice.Uint(math.MaxUint64)})      // encoder: above MaxInt64
	batch[35] = mk(36, sluice.Field{Key: "w", Value: sluice.Uint(math.MaxInt64 - 100)}) // stored, as an integer

	err = s.Write(context.Background(), batch)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v (%T), want *sinks.RejectedError", err, err)
	}
	if rej.Rejected != 3 {
		t.Errorf("Rejected = %d, want 3 (%v; sample %q)", rej.Rejected, err, rej.Sample)
	}
	got := map[string]bool{}
	for _, series := range srv.Query(`SELECT count(*) FROM r GROUP BY n`) {
		got[series.Tags["n"]] = true
	}
	for i := 0; i <= 40; i++ {
		stored, want := got[strconv.Itoa(i)], i != 5 && i != 21 && i != 31
		if stored != want {
			t.Errorf("point n=%d stored %v, want %v", i, stored, want)
		}
	}
	rows := srv.Query(`SELECT w FROM r WHERE n = '36'`)
	if len(rows) != 1 || rows[0].Values[0][1] != json.Number(strconv.FormatUint(math.MaxInt64-100, 10)) {
		t.Errorf("uint field read back as %+v", rows)
	}
}

// trades makes n trades per symbol across symbols, with perMs trades of a
// symbol sharing each millisecond, and ids shared between symbols (the
// symbol tag tells them apart).
func trades(symbols, n, perMs int, from int) []sluice.Point {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var ps []sluice.Point
	for j := from; j < from+n; j++ {
		for s := range symbols {
			ps = append(ps, sluice.Point{
				Measurement: "trades",
				Tags: []sluice.Tag{
					{Key: "exchange", Value: "binance"},
					{Key: "market", Value: "spot"},
					{Key: "symbol", Value: fmt.Sprintf("SYM%d", s)},
				},
				Fields: []sluice.Field{
					{Key: "trade_id", Value: sluice.Int(int64(7_000_000_000 + j))},
					{Key: "price", Value: sluice.Float(100 + float64(j%97)/8)},
					{Key: "amount", Value: sluice.Float(float64(j%13) / 4)},
					{Key: "side", Value: sluice.String([]string{"buy", "sell"}[j%2])},
				},
				Time:     t0.Add(time.Duration(j/perMs) * time.Millisecond),
				Received: time.Now(),
			})
		}
	}
	return ps
}

var tradesMeasurement = sluice.Measurement{Name: "trades", Unique: []string{"exchange", "market", "symbol", "trade_id", "time"}}

// countTrades returns stored points and distinct trade ids per symbol.
func countTrades(t *testing.T, srv *testinflux.Server) (points, distinct map[string]int64) {
	t.Helper()
	points, distinct = map[string]int64{}, map[string]int64{}
	for _, series := range srv.Query(`SELECT count(trade_id), count(distinct(trade_id)) FROM trades GROUP BY symbol`) {
		c, _ := series.Values[0][1].(json.Number).Int64()
		d, _ := series.Values[0][2].(json.Number).Int64()
		points[series.Tags["symbol"]], distinct[series.Tags["symbol"]] = c, d
	}
	return points, distinct
}

func TestRealTradesIdentity(t *testing.T) {
	srv := testinflux.Start(t)
	s := realSink(t, srv, true)
	if err := s.Declare(context.Background(), []sluice.Measurement{tradesMeasurement}); err != nil {
		t.Fatal(err)
	}
	const symbols, perSymbol, perMs = 5, 4000, 40 // 20,000 trades, 100 ms
	ps := trades(symbols, perSymbol, perMs, 0)
	write := func() {
		for i := 0; i < len(ps); i += 5000 {
			if err := s.Write(context.Background(), ps[i:min(i+5000, len(ps))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string) {
		points, distinct := countTrades(t, srv)
		for sym := range symbols {
			name := fmt.Sprintf("SYM%d", sym)
			if points[name] != perSymbol || distinct[name] != perSymbol {
				t.Errorf("%s: %s has %d points, %d distinct trade ids; want %d of each", when, name, points[name], distinct[name], perSymbol)
			}
		}
	}
	write()
	check("after the first write")
	write()
	check("after writing the same trades again")

	// Every trade sits in its event's millisecond, at trade_id mod 1e6 ns.
	rows := srv.Query(`SELECT trade_id FROM trades WHERE symbol = 'SYM3'`)
	if len(rows) != 1 || len(rows[0].Values) != perSymbol {
		t.Fatalf("SYM3 rows: %d series", len(rows))
	}
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, row := range rows[0].Values {
		ns, _ := row[0].(json.Number).Int64()
		id, _ := row[1].(json.Number).Int64()
		j := id - 7_000_000_000
		if wantMs := t0 + j/perMs*int64(time.Millisecond); ns-ns%int64(time.Millisecond) != wantMs || ns%int64(time.Millisecond) != id%1_000_000 {
			t.Fatalf("trade %d stored at %d, want %d + %d", id, ns, wantMs, id%1_000_000)
		}
	}

	// Flux agrees.
	recs := srv.QueryFlux(`from(bucket: "` + testinflux.Bucket + `") |> range(start: 2026-01-01T00:00:00Z, stop: 2027-01-01T00:00:00Z) |> filter(fn: (r) => r._measurement == "trades" and r._field == "trade_id") |> count()`)
	if len(recs) != symbols {
		t.Fatalf("flux: %d tables, want %d", len(recs), symbols)
	}
	for _, r := range recs {
		if r["_value"] != int64(perSymbol) {
			t.Errorf("flux count for %v = %v, want %d", r["symbol"], r["_value"], perSymbol)
		}
	}
}

// TestRealOutage stops InfluxDB between and during writes, retrying each
// failed batch as the pipeline would, and checks that nothing was lost
// and nothing duplicated.
func TestRealOutage(t *testing.T) {
	srv := testinflux.Start(t)
	s := realSink(t, srv, true)
	if err := s.Declare(context.Background(), []sluice.Measurement{tradesMeasurement}); err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 10, 400 // per symbol; 2 symbols
	failures := 0
	for b := range batches {
		batch := trades(2, perBatch, 25, b*perBatch)
		stopped := make(chan struct{})
		switch b {
		case 3: // down before the write
			srv.Stop()
			close(stopped)
		case 6: // going down while the write is in flight
			go func() { srv.Stop(); close(stopped) }()
		default:
			close(stopped)
		}
		// The pipeline's retry loop: same batch until it is stored.
		restarted := false
		for attempt := 1; ; attempt++ {
			err := s.Write(context.Background(), batch)
			if err == nil {
				break
			}
			var rej *sinks.RejectedError
			if sinks.IsFailed(err) || errors.As(err, &rej) {
				t.Fatalf("batch %d: %v (%T), want a retryable error", b, err, err)
			}
			if _, ok := sinks.AsRetryAfter(err); ok {
				t.Fatalf("batch %d: %v: a stopped server is a network error", b, err)
			}
			failures++
			if attempt == 20 {
				t.Fatalf("batch %d still failing after %d attempts: %v", b, attempt, err)
			}
			if attempt >= 2 { // fail at least twice, then bring it back
				<-stopped
				srv.Restart()
				restarted = true
			}
		}
		<-stopped
		if b == 6 && !restarted {
			srv.Restart() // the write won the race with the stop
		}
	}
	if failures < 2 {
		t.Errorf("%d failed writes; the outage was not seen", failures)
	}
	points, distinct := countTrades(t, srv)
	for _, sym := range []string{"SYM0", "SYM1"} {
		if points[sym] != batches*perBatch || distinct[sym] != batches*perBatch {
			t.Errorf("%s: %d points, %d distinct trade ids; want %d of each", sym, points[sym], distinct[sym], batches*perBatch)
		}
	}
}

func TestRealTooLarge(t *testing.T) {
	srv := testinflux.StartWith(t, testinflux.Options{MaxBodySize: 64 << 10})
	s := realSink(t, srv, false)
	ps := trades(1, 5000, 1, 0) // about 500 KB of line protocol
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	if points, _ := countTrades(t, srv); points["SYM0"] != 5000 {
		t.Errorf("%d points stored, want 5000", points["SYM0"])
	}
}

func TestRealAuth(t *testing.T) {
	srv := testinflux.StartWith(t, testinflux.Options{AuthUser: "sluice", AuthPassword: "p@ss:word"})
	bad := New(Config{URL: srv.URL(), Bucket: testinflux.Bucket, Token: "sluice:wrong", Gzip: true}, nil)
	if err := bad.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Write(context.Background(), trades(1, 3, 1, 0)); !sinks.IsFailed(err) {
		t.Fatalf("wrong password: %v (%T), want a FailedError", err, err)
	}
	good := realSink(t, srv, true) // token "user:password", password with a colon
	if err := good.Write(context.Background(), trades(1, 3, 1, 0)); err != nil {
		t.Fatal(err)
	}
}
