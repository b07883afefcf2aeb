package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/lineproto"
	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/internal/testnats"
	"github.com/sluicehq/sluice/sinks"
)

const testStream = "SLUICE"

var tradesM = sluice.Measurement{Name: "trades", Unique: tradeKey}

func testConfig(url string) Config {
	c := DefaultConfig()
	c.URL = url
	c.Stream = testStream
	c.CreateStream = true
	c.Timeout = 3 * time.Second
	return c
}

// open returns an open sink with trades declared, closed at the end.
func open(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s := New(cfg, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Declare(context.Background(), []sluice.Measurement{tradesM}); err != nil {
		t.Fatal(err)
	}
	return s
}

func trades(symbol string, from, n int) []sluice.Point {
	ps := make([]sluice.Point, n)
	for i := range ps {
		ps[i] = *trade(symbol, sluice.Int(int64(from+i)))
		ps[i].Received = time.Unix(0, 1700000000999999999)
	}
	return ps
}

func write(t *testing.T, s *Sink, ps []sluice.Point) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Write(ctx, ps); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// stored reads every message of the stream.
func stored(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, testStream)
	if err != nil {
		t.Fatal(err)
	}
	n := st.CachedInfo().State.Msgs
	if n == 0 {
		return nil
	}
	c, err := js.OrderedConsumer(ctx, testStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < n {
		batch, err := c.Fetch(int(n)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}
	return out
}

func TestWritePublishesOnePointPerMessage(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	s := open(t, testConfig(srv.URL()))
	ps := trades("BTCUSDT", 100, 50)
	ps = append(ps, *point("feed_events", "feed", "btc", "kind", "gap"))
	ps[len(ps)-1].Fields = []sluice.Field{{Key: "message", Value: sluice.String("a \"gap\"")}, {Key: "n", Value: sluice.Uint(1 << 63)}}
	write(t, s, ps)

	_, js := testnats.Connect(t, srv.URL())
	msgs := stored(t, js)
	if len(msgs) != len(ps) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(ps))
	}
	for i, m := range msgs {
		want := ps[i]
		var got []sluice.Point
		if bad, err := lineproto.Decode(m.Data(), time.Time{}, func(p sluice.Point) { got = append(got, p) }); bad > 0 {
			t.Fatalf("message %d: %v", i, err)
		}
		rec, err := natsbus.ParseTime(m.Headers().Get(natsbus.HeaderReceived))
		if err == nil {
			got[0].Received = rec
		}
		if len(got) != 1 || !got[0].Equal(&want) {
			t.Fatalf("message %d %q decodes to %+v, want %+v", i, m.Data(), got, want)
		}
		h := m.Headers()
		if want.Measurement == "trades" {
			if sub := "sluice.trades.binance.spot.BTCUSDT"; m.Subject() != sub {
				t.Errorf("subject %q, want %q", m.Subject(), sub)
			}
			if id := fmt.Sprintf("trades:binance:spot:BTCUSDT:%d", 100+i); h.Get(jetstream.MsgIDHeader) != id {
				t.Errorf("Nats-Msg-Id %q, want %q", h.Get(jetstream.MsgIDHeader), id)
			}
			if u := h.Get(natsbus.HeaderUnique); u != "exchange,market,symbol,trade_id" {
				t.Errorf("Sluice-Unique %q", u)
			}
			continue
		}
		if m.Subject() != "sluice.feed_events._._._" || h.Get(jetstream.MsgIDHeader) != "" || h.Get(natsbus.HeaderUnique) != "" {
			t.Errorf("undeclared measurement: subject %q, headers %v", m.Subject(), h)
		}
	}
}

// Two recorders sending the same trades, and a batch sent twice, store
// each trade once: the message id is the same whoever sends it.
func TestSameTradesFromTwoSinksStoredOnce(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	a, b := open(t, testConfig(srv.URL())), open(t, testConfig(srv.URL()))
	write(t, a, trades("BTCUSDT", 1, 300))
	write(t, b, trades("BTCUSDT", 151, 300)) // 151..450: half already stored
	write(t, a, trades("BTCUSDT", 1, 300))   // a retried batch
	_, js := testnats.Connect(t, srv.URL())
	msgs := stored(t, js)
	if len(msgs) != 450 {
		t.Fatalf("stream holds %d messages, want 450 (one per trade id)", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Fatalf("%s stored twice", id)
		}
		seen[id] = true
	}
}

// A measurement without a key has no message id: sent twice, stored
// twice (at least once).
func TestNoKeyIsAtLeastOnce(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	s := open(t, testConfig(srv.URL()))
	if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "trades"}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, trades("BTCUSDT", 1, 10))
	write(t, s, trades("BTCUSDT", 1, 10))
	_, js := testnats.Connect(t, srv.URL())
	if n := len(stored(t, js)); n != 20 {
		t.Fatalf("stream holds %d, want 20", n)
	}
}

// The server is down when the sink opens and writes: Open succeeds,
// Write fails retryably (not failed), and once the server is up the same
// batch goes through.
func TestUnreachableServer(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	url := srv.URL()
	srv.Shutdown()
	s := open(t, testConfig(url))
	err := s.Write(context.Background(), trades("BTCUSDT", 1, 10))
	if err == nil || sinks.IsFailed(err) {
		t.Fatalf("write to a server that is down: %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error %q does not say which server", err)
	}
	t.Logf("down: %v", err)
	srv.Restart()
	write(t, s, trades("BTCUSDT", 1, 10))
	_, js := testnats.Connect(t, url)
	if n := len(stored(t, js)); n != 10 {
		t.Fatalf("stream holds %d, want 10", n)
	}
}

// The connection lost between two batches: each retry while the client
// reconnects fails at once, saying so, and sends nothing; so a point
// without an id is stored once more per retried batch that reached the
// server, not once per retry made during the outage.
func TestConnectionLostRetriesSendNothing(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	cfg := testConfig(srv.URL())
	cfg.Timeout = 300 * time.Millisecond
	s := open(t, cfg)
	if err := s.Declare(context.Background(), []sluice.Measurement{{Name: "trades"}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, trades("BTCUSDT", 1, 10))
	srv.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for !s.nc.IsReconnecting() {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the server went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
	batch := trades("BTCUSDT", 11, 10)
	for range 5 { // the pipeline's retries during the outage
		err := s.Write(context.Background(), batch)
		if err == nil || sinks.IsFailed(err) || !strings.Contains(err.Error(), "not connected to "+srv.URL()+" (reconnecting)") {
			t.Fatalf("write while the server is down: %v, want a retryable error saying not connected", err)
		}
	}
	srv.Restart()
	deadline = time.Now().Add(10 * time.Second)
	for err := s.Write(context.Background(), batch); err != nil; err = s.Write(context.Background(), batch) {
		if time.Now().After(deadline) {
			t.Fatalf("write once the server is back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, js := testnats.Connect(t, srv.URL())
	if n := len(stored(t, js)); n != 20 {
		t.Fatalf("stream holds %d messages, want 20: the batch before the outage and the one after, once each", n)
	}
}

// An existing stream that cannot hold the template's subjects is refused
// with the subjects to add, and left as it was; so is a stream missing
// when create_stream is off.
func TestStreamThatCannotHoldTheSubjects(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	_, js := testnats.Connect(t, srv.URL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"sluice.trades.>"}}); err != nil {
		t.Fatal(err)
	}
	s := open(t, testConfig(srv.URL()))
	err := s.Write(ctx, trades("BTCUSDT", 1, 10))
	if !sinks.IsFailed(err) || !strings.Contains(err.Error(), "sluice.*.*.*.*") {
		t.Fatalf("write: %v, want a failed error naming sluice.*.*.*.*", err)
	}
	t.Logf("refused: %v", err)
	st, _ := js.Stream(ctx, testStream)
	if st.CachedInfo().State.Msgs != 0 || len(st.CachedInfo().Config.Subjects) != 1 {
		t.Fatalf("the stream was changed: %+v", st.CachedInfo())
	}

	cfg := testConfig(srv.URL())
	cfg.Stream, cfg.CreateStream = "MISSING", false
	err = open(t, cfg).Write(ctx, trades("BTCUSDT", 1, 10))
	if !sinks.IsFailed(err) || !strings.Contains(err.Error(), `"MISSING" does not exist`) {
		t.Fatalf("write to a missing stream: %v", err)
	}
}

// Creating the stream when another stream already holds the subjects is
// refused, clearly.
func TestCreateStreamOverlapping(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	_, js := testnats.Connect(t, srv.URL())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"sluice.>"}}); err != nil {
		t.Fatal(err)
	}
	err := open(t, testConfig(srv.URL())).Write(context.Background(), trades("BTCUSDT", 1, 10))
	if !sinks.IsFailed(err) || !strings.Contains(err.Error(), "another stream holds") {
		t.Fatalf("write: %v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{User: "sluice", Password: "right-password"})
	cfg := testConfig(srv.URL())
	cfg.User, cfg.Password = "sluice", "wrong-password"
	s := open(t, cfg)
	err := s.Write(context.Background(), trades("BTCUSDT", 1, 10))
	if !sinks.IsFailed(err) || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("write with a wrong password: %v, want a failed error saying authorization violation", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("the error shows the password: %v", err)
	}
	cfg.Password = "right-password"
	write(t, open(t, cfg), trades("BTCUSDT", 1, 10))
}

// The stream deleted while the sink runs: the next write fails (nothing
// is acknowledged, so the pipeline keeps the batch); with create_stream
// the stream is made again and the batch lands, without it the sink
// says the stream is gone.
func TestStreamDeletedUnderRunningSink(t *testing.T) {
	for _, create := range []bool{true, false} {
		t.Run(fmt.Sprintf("create_stream=%v", create), func(t *testing.T) {
			srv := testnats.Start(t, testnats.Options{})
			_, js := testnats.Connect(t, srv.URL())
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"sluice.>"}}); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(srv.URL())
			cfg.CreateStream = create
			s := open(t, cfg)
			write(t, s, trades("BTCUSDT", 1, 10))
			if err := js.DeleteStream(ctx, testStream); err != nil {
				t.Fatal(err)
			}
			batch := trades("BTCUSDT", 11, 10)
			err := s.Write(ctx, batch)
			if err == nil || sinks.IsFailed(err) || !strings.Contains(err.Error(), "no stream answered") {
				t.Fatalf("write after the stream was deleted: %v", err)
			}
			t.Logf("deleted: %v", err)
			err = s.Write(ctx, batch) // the pipeline's retry
			if !create {
				if !sinks.IsFailed(err) || !strings.Contains(err.Error(), "does not exist") {
					t.Fatalf("retry without create_stream: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if n := len(stored(t, js)); n != 10 {
				t.Fatalf("the new stream holds %d, want the 10 of the retried batch", n)
			}
		})
	}
}

// A point larger than the stream's max_msg_size is rejected alone; the
// rest of its batch is stored.
func TestMessageTooLargeRejected(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	_, js := testnats.Connect(t, srv.URL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: testStream, Subjects: []string{"sluice.>"}, MaxMsgSize: 512}); err != nil {
		t.Fatal(err)
	}
	s := open(t, testConfig(srv.URL()))
	ps := trades("BTCUSDT", 1, 10)
	ps[4].Fields = append(ps[4].Fields, sluice.Field{Key: "note", Value: sluice.String(strings.Repeat("x", 1000))})
	ps[6].Fields = append(ps[6].Fields, sluice.Field{Key: "bad", Value: sluice.Float(0)})
	ps[6].Fields[len(ps[6].Fields)-1].Value = sluice.Value{} // cannot be encoded
	err := s.Write(ctx, ps)
	var rej *sinks.RejectedError
	if !errors.As(err, &rej) || rej.Rejected != 2 {
		t.Fatalf("write: %v, want 2 points rejected", err)
	}
	t.Logf("rejected: %v; sample %s", err, rej.Sample)
	if n := len(stored(t, js)); n != 8 {
		t.Fatalf("stream holds %d, want 8", n)
	}
}

// A small in-flight bound is kept, publishing is asynchronous (more than
// one message waits at once), and everything lands in order.
func TestSmallInFlightWindow(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	cfg := testConfig(srv.URL())
	cfg.MaxInFlight = 3
	s := open(t, cfg)
	write(t, s, trades("ETHUSDT", 1, 1000))
	if s.peakInFlight != cfg.MaxInFlight {
		t.Errorf("at most %d messages waited for their acknowledgement at once, want max_in_flight (%d)", s.peakInFlight, cfg.MaxInFlight)
	}
	_, js := testnats.Connect(t, srv.URL())
	msgs := stored(t, js)
	if len(msgs) != 1000 {
		t.Fatalf("stream holds %d", len(msgs))
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("trades:binance:spot:ETHUSDT:%d", i+1); m.Headers().Get(jetstream.MsgIDHeader) != want {
			t.Fatalf("message %d is %s", i, m.Headers().Get(jetstream.MsgIDHeader))
		}
	}
}

// An NKey seed file authenticates; another user's seed is refused as
// failed.
func TestNKeyAuth(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	srv := testnats.Start(t, testnats.Options{NKey: pub})
	seedFile := func(kp nkeys.KeyPair) string {
		seed, _ := kp.Seed()
		path := filepath.Join(t.TempDir(), "user.nk")
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := testConfig(srv.URL())
	cfg.NKeyFile = seedFile(user)
	write(t, open(t, cfg), trades("BTCUSDT", 1, 10))

	other, _ := nkeys.CreateUser()
	cfg.NKeyFile = seedFile(other)
	if err := open(t, cfg).Write(context.Background(), trades("BTCUSDT", 1, 10)); !sinks.IsFailed(err) {
		t.Fatalf("another user's seed: %v, want a failed error", err)
	}
}
