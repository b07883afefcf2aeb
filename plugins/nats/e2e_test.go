package nats_test

// End to end: the real agent and sluice-source-nats binaries read a
// stream that the nats sink (in the test process) writes, into a real
// SQLite file.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testnats"
	natssink "github.com/sluicehq/sluice/sinks/nats"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(testbin.Main(m))
}

const stream = "SLUICE"

var (
	tradesM = sluice.Measurement{Name: "trades", Unique: []string{"exchange", "market", "symbol", "trade_id", "time"}}
	aggM    = sluice.Measurement{Name: "agg_trades", Unique: []string{"exchange", "market", "symbol", "agg_id", "time"}}
)

// base is the event time of trade id 0.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func trades(m, idField, symbol string, from, n int) []sluice.Point {
	ps := make([]sluice.Point, n)
	for i := range ps {
		id := int64(from + i)
		ps[i] = sluice.Point{
			Measurement: m,
			Tags: []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "market", Value: "spot"},
				{Key: "side", Value: "buy"}, {Key: "symbol", Value: symbol}},
			Fields: []sluice.Field{{Key: "price", Value: sluice.Float(100 + float64(id)/8)},
				{Key: "quantity", Value: sluice.Uint(uint64(id % 7))}, {Key: idField, Value: sluice.Int(id)}},
			Time:     base.Add(time.Duration(id) * time.Millisecond).Add(123),
			Received: base.Add(time.Duration(id)*time.Millisecond + 5*time.Millisecond),
		}
	}
	return ps
}

// recorder is a nats sink in the test process, as a recording agent has.
func recorder(t *testing.T, url string) *natssink.Sink {
	t.Helper()
	cfg := natssink.DefaultConfig()
	cfg.URL, cfg.Stream, cfg.CreateStream = url, stream, true
	s := natssink.New(cfg, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Declare(context.Background(), []sluice.Measurement{tradesM, aggM}); err != nil {
		t.Fatal(err)
	}
	return s
}

func publish(t *testing.T, s *natssink.Sink, ps []sluice.Point) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Write(ctx, ps); err != nil {
		t.Fatal(err)
	}
}

func writerConfig(url, extra string) string {
	return fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  bus:
    plugin: nats
    sinks: [db]
    config: {url: %q, stream: %s%s}
`, url, stream, extra)
}

func TestStreamIntoSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	srv := testnats.Start(t, testnats.Options{})
	rec := recorder(t, srv.URL())
	publish(t, rec, trades("trades", "trade_id", "BTCUSDT", 1, 2000))
	publish(t, rec, trades("trades", "trade_id", "ETHUSDT", 1, 1000))
	events := []sluice.Point{{Measurement: "feed_events", Tags: []sluice.Tag{{Key: "kind", Value: "gap"}},
		Fields: []sluice.Field{{Key: "message", Value: sluice.String("a \"quoted\"\nmessage")}}, Time: base}}
	publish(t, rec, events)

	a := testagent.Start(t, writerConfig(srv.URL(), ""))
	a.WaitForCount(t, `SELECT count(*) FROM trades`, 3000)
	a.WaitForCount(t, `SELECT count(*) FROM feed_events`, 1)
	db := testagent.OpenDB(t, a.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'trades_key'`); n != 1 {
		t.Fatal("trades has no uniqueness index: the key did not travel with the messages")
	}
	// The values, event time and receive time arrive as the recorder had them.
	var price float64
	var qty, tm, rcv int64
	var side, msg string
	if err := db.QueryRow(`SELECT price, quantity, time, received, side FROM trades WHERE symbol = 'BTCUSDT' AND trade_id = 1234`).Scan(&price, &qty, &tm, &rcv, &side); err != nil {
		t.Fatal(err)
	}
	want := trades("trades", "trade_id", "BTCUSDT", 1234, 1)[0]
	if price != 100+1234.0/8 || qty != 1234%7 || tm != want.Time.UnixNano() || rcv != want.Received.UnixNano() || side != "buy" {
		t.Errorf("trade 1234: price %v qty %d time %d received %d side %q; want %v %d %d %d buy",
			price, qty, tm, rcv, side, 100+1234.0/8, 1234%7, want.Time.UnixNano(), want.Received.UnixNano())
	}
	if err := db.QueryRow(`SELECT message FROM feed_events`).Scan(&msg); err != nil || msg != "a \"quoted\"\nmessage" {
		t.Errorf("feed_events message %q (%v)", msg, err)
	}
	// Give the position covering everything time to reach the buffer,
	// then kill the agent.
	time.Sleep(time.Second)
	first := testagent.Feed(mustStatus(t, a), "bus").Points
	a.Kill()

	// More arrives while the writer is down, and some of the old again
	// (absorbed by the stream's duplicate window).
	publish(t, rec, trades("trades", "trade_id", "BTCUSDT", 2001, 1000))
	publish(t, rec, trades("trades", "trade_id", "BTCUSDT", 1, 500))

	b := testagent.Launch(t, a.Config)
	b.WaitForCount(t, `SELECT count(*) FROM trades`, 4000)
	st := b.WaitFor(t, "the new trades read", func(st agent.Status) bool { return testagent.Written(st, "db") >= 1000 })
	if p := testagent.Feed(st, "bus").Points; p >= first {
		t.Errorf("after the restart the feed read %d points, as many as its whole first run (%d): it did not resume", p, first)
	}

	// A measurement the writer has not declared shows up: the plugin
	// restarts itself so that its key is declared before it is written.
	publish(t, rec, trades("agg_trades", "agg_id", "BTCUSDT", 1, 300))
	b.WaitForCount(t, `SELECT count(*) FROM agg_trades`, 300)
	db = testagent.OpenDB(t, b.DB)
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'agg_trades_key'`); n != 1 {
		t.Error("agg_trades has no uniqueness index: it was written before its key was declared")
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM trades`); n != 4000 {
		t.Errorf("trades holds %d rows, want 4000", n)
	}
	b.Stop(t)
}

func mustStatus(t *testing.T, a *testagent.Agent) agent.Status {
	t.Helper()
	st, ok := a.Status(t)
	if !ok {
		t.Fatal("no status")
	}
	return st
}

// Bad input: a config without a stream fails with the key named; a
// server that is down, or a stream that does not exist yet, makes the
// feed retry with backoff and say why; a refused password fails the feed
// until its config changes.
func TestFeedErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	srv := testnats.Start(t, testnats.Options{User: "reader", Password: "right-secret"})
	down := testnats.Start(t, testnats.Options{})
	downURL := down.URL()
	down.Shutdown()
	good := strings.Replace(srv.URL(), "nats://", "nats://reader:right-secret@", 1)
	bad := strings.Replace(srv.URL(), "nats://", "nats://reader:wrong-secret@", 1)
	a := testagent.Start(t, fmt.Sprintf(`sinks:
  db: {type: sqlite, path: sluice.db}
feeds:
  nostream: {plugin: nats, sinks: [db], config: {url: %q}}
  down: {plugin: nats, sinks: [db], config: {url: %q, stream: S}}
  missing: {plugin: nats, sinks: [db], config: {url: %q, stream: NOPE}}
  refused: {plugin: nats, sinks: [db], config: {url: %q, stream: S}}
`, good, downURL, good, bad))
	st := a.WaitFor(t, "every feed settled", func(st agent.Status) bool {
		return testagent.Feed(st, "nostream").State == agent.FeedFailedConfig &&
			testagent.Feed(st, "down").Restarts > 0 && testagent.Feed(st, "missing").Restarts > 0 &&
			testagent.Feed(st, "refused").State == agent.FeedFailed
	})
	for feed, want := range map[string]string{
		"nostream": "stream: missing",
		"down":     strings.TrimPrefix(downURL, "nats://"),
		"missing":  `stream "NOPE" does not exist`,
		"refused":  "Authorization Violation",
	} {
		got := testagent.Feed(st, feed).LastError
		if !strings.Contains(got, want) {
			t.Errorf("feed %s: last error %q, want it to say %q", feed, got, want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("feed %s: last error shows a password: %q", feed, got)
		}
	}
}
