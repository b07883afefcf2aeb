package dashtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance"
)

// The dashboards are run against points the Binance parser makes from real
// captured frames (the project's shared data, beside the clone): every
// single-message capture, and the recorded sessions replayed through the
// parser and a local order book as the binance source would. The lead will
// replace this with the full agent fed by the simulated exchange.

// sharedDir is the project's shared Binance data.
const sharedDir = "../../../shared/data/binance"

// singleReceived is the receive time given to single captured messages,
// whose real one is unknown. It only matters for the frames without an
// event time (spot bookTicker and partial depth), which are stamped with it.
var singleReceived = time.Date(2022, 1, 3, 4, 5, 6, 0, time.UTC)

// The binance source's defaults for publishing its local books.
const (
	bookInterval = time.Second
	bookDepth    = 20
)

// session is one replayed recording.
type session struct {
	market      binance.Market
	feed        string
	first, last time.Time        // receive times of the first and last line
	aggTrades   map[string]int   // agg_trades points per symbol
	aggIDs      map[string]int64 // an aggregate trade id seen per symbol
}

// topSymbol returns the symbol with the most aggregate trades.
func (s *session) topSymbol() string {
	best, n := "", -1
	for sym, c := range s.aggTrades {
		if c > n || (c == n && sym < best) {
			best, n = sym, c
		}
	}
	return best
}

// dataset is every point written to the stores.
type dataset struct {
	points      []sluice.Point
	sessions    map[string]*session // by file name up to "_cryptofeed"
	first, last time.Time           // event times spanned by the points
}

var loadOnce = sync.OnceValues(load)

// loadData returns the dataset, skipping the test when the shared data is
// absent (CI keeps it beside the clone).
func loadData(t testing.TB) *dataset {
	t.Helper()
	if _, err := os.Stat(sharedDir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("shared Binance data not found at %s", sharedDir)
	}
	ds, err := loadOnce()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func load() (*dataset, error) {
	ds := &dataset{sessions: map[string]*session{}}
	singles, err := filepath.Glob(filepath.Join(sharedDir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	for _, path := range singles {
		if err := ds.addSingles(path); err != nil {
			return nil, err
		}
	}
	sessions, err := filepath.Glob(filepath.Join(sharedDir, "recorded", "*.replay.jsonl"))
	if err != nil {
		return nil, err
	}
	if len(sessions) == 0 {
		return nil, fmt.Errorf("no recorded sessions in %s/recorded", sharedDir)
	}
	for _, path := range sessions {
		if err := ds.replay(path); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	for i, p := range ds.points {
		if i == 0 || p.Time.Before(ds.first) {
			ds.first = p.Time
		}
		if p.Time.After(ds.last) {
			ds.last = p.Time
		}
	}
	return ds, nil
}

// marketOf reads the market from a file name's prefix ("usdm_kline.jsonl").
func marketOf(path string) (binance.Market, bool) {
	m, err := binance.ParseMarket(strings.SplitN(filepath.Base(path), "_", 2)[0])
	return m, err == nil
}

// addSingles parses one file of single captured messages. Lines the parser
// refuses (bare partial-depth frames need their stream's name) are left
// out; a file yielding no point at all is an error.
func (ds *dataset) addSingles(path string) error {
	m, ok := marketOf(path)
	if !ok {
		return nil // control_responses, server_events, rest_*: not market data
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := len(ds.points)
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		pts, _, err := binance.ParseFrame(m, line, singleReceived, ds.points)
		if err != nil && !errors.Is(err, binance.ErrFrame) {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		ds.points = pts
	}
	if len(ds.points) == n && !strings.Contains(path, "depthUpdate") && !strings.Contains(path, "depth_partial") {
		return fmt.Errorf("%s: no points", filepath.Base(path))
	}
	return nil
}

// replayLine is one line of a *.replay.jsonl file.
type replayLine struct {
	T   float64 `json:"t"`
	Src string  `json:"src"`
	URL string  `json:"url"`
	Raw string  `json:"raw"`
}

func (l *replayLine) received() time.Time {
	sec, frac := math.Modf(l.T)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// replay feeds a recorded session through the parser and per-symbol books,
// publishing each synced book every bookInterval of event time, then adds
// the feed events a live feed would have reported around it.
func (ds *dataset) replay(path string) error {
	m, ok := marketOf(path)
	if !ok {
		return fmt.Errorf("no market in the file name")
	}
	name, _, _ := strings.Cut(filepath.Base(path), "_cryptofeed")
	s := &session{market: m, feed: "binance-" + m.String(), aggTrades: map[string]int{}, aggIDs: map[string]int64{}}
	ds.sessions[name] = s

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	books := map[string]*binance.Book{}
	published := map[string]time.Time{}
	book := func(sym string) *binance.Book {
		b := books[sym]
		if b == nil {
			b = binance.NewBook(m, sym)
			books[sym] = b
		}
		return b
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l replayLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return err
		}
		recv := l.received()
		if s.first.IsZero() {
			s.first = recv
		}
		s.last = recv
		switch l.Src {
		case "ws":
			pts, ev, err := binance.ParseFrame(m, []byte(l.Raw), recv, ds.points)
			if err != nil {
				return err
			}
			ds.points = pts
			switch ev.Kind {
			case binance.EventAggTrade:
				s.aggTrades[ev.Symbol]++
				if s.aggTrades[ev.Symbol] == 1 {
					s.aggIDs[ev.Symbol] = ev.ID
				}
			case binance.EventDepthUpdate:
				b := book(ev.Symbol)
				if err := b.Apply(&ev.Depth); err != nil {
					if !errors.Is(err, binance.ErrGap) {
						return err
					}
					ds.points = append(ds.points, feedEvent(s.feed, binance.FeedResync, ev.Symbol, err.Error(), recv, 0, 0))
					continue
				}
				if b.Synced() && ev.Time.Sub(published[ev.Symbol]) >= bookInterval {
					ds.points = b.AppendPoints(ds.points, bookDepth, ev.Time, recv)
					published[ev.Symbol] = ev.Time
				}
			}
		case "rest":
			u, err := url.Parse(l.URL)
			if err != nil {
				return err
			}
			snap, err := binance.ParseDepthSnapshot([]byte(l.Raw))
			if err != nil {
				return err
			}
			if err := book(u.Query().Get("symbol")).Snapshot(&snap); err != nil && !errors.Is(err, binance.ErrGap) {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(published) == 0 {
		return errors.New("no book was ever synced")
	}

	// What a live feed reports around a session: the connection coming
	// up, a short trade-id gap on its busiest symbol and its backfill,
	// and the connection ending when the recording stops.
	sym := s.topSymbol()
	if sym == "" {
		return errors.New("no aggregate trades")
	}
	mid := s.first.Add(s.last.Sub(s.first) / 2)
	id := s.aggIDs[sym]
	ds.points = append(ds.points,
		feedEvent(s.feed, binance.FeedReconnect, "", "connection 1 carries its streams again", s.first, 0, 0),
		feedEvent(s.feed, binance.FeedGap, sym, "3 ids missing", mid, id+1, id+3),
		feedEvent(s.feed, binance.FeedBackfill, sym, "3 ids backfilled over REST", mid.Add(time.Second), id+1, id+3),
		feedEvent(s.feed, binance.FeedDisconnect, "", "connection 1: websocket: close 1006 (abnormal closure)", s.last, 0, 0),
	)
	return nil
}

// feedEvent builds a feed_events point the way the binance source does:
// tags feed, kind and (about one symbol) symbol; fields message and, for
// events about ids, count, from_id and to_id.
func feedEvent(feed, kind, symbol, message string, at time.Time, from, to int64) sluice.Point {
	tags := []sluice.Tag{{Key: binance.TagFeed, Value: feed}, {Key: binance.TagKind, Value: kind}}
	if symbol != "" {
		tags = append(tags, sluice.Tag{Key: binance.TagSymbol, Value: symbol})
	}
	fields := []sluice.Field{{Key: "message", Value: sluice.String(message)}}
	if to > 0 {
		fields = append(fields,
			sluice.Field{Key: "count", Value: sluice.Int(to - from + 1)},
			sluice.Field{Key: "from_id", Value: sluice.Int(from)},
			sluice.Field{Key: "to_id", Value: sluice.Int(to)})
	}
	return sluice.Point{Measurement: binance.MeasFeedEvents, Tags: tags, Fields: fields, Time: at, Received: at}
}

// measurements is every measurement in the dataset, for Declare.
func measurements() []sluice.Measurement {
	return append(binance.Measurements(), sluice.Measurement{Name: binance.MeasFeedEvents})
}

// TestDataset checks that the data the dashboards are run against has
// every measurement they read, so an empty store cannot pass as a bad query.
func TestDataset(t *testing.T) {
	ds := loadData(t)
	count := map[string]int{}
	for _, p := range ds.points {
		count[p.Measurement]++
	}
	for _, m := range []string{binance.MeasTrades, binance.MeasAggTrades, binance.MeasCandles, binance.MeasBookTicker,
		binance.MeasBook, binance.MeasFeedEvents, binance.MeasTicker, binance.MeasMarkPrice} {
		if count[m] == 0 {
			t.Errorf("no %s points", m)
		}
	}
	names := make([]string, 0, len(ds.sessions))
	for n := range ds.sessions {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("%d points %v from %s to %s; sessions %v", len(ds.points), count, ds.first, ds.last, names)
}
