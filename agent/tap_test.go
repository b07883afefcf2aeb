package agent

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func mustSubscribe(t *testing.T, h *tapHub, feed, measurement string) *tapSub {
	t.Helper()
	s, err := h.subscribe(feed, measurement)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func queued(s *tapSub) (chunks, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.bytes
}

func TestTapNeverBlocksAndCountsDrops(t *testing.T) {
	var h tapHub
	h.publish("f", []sluice.Point{{Measurement: "m"}}) // no subscribers: nothing to do
	slow := mustSubscribe(t, &h, "f", "")
	other := mustSubscribe(t, &h, "g", "")
	only := mustSubscribe(t, &h, "f", "wanted")
	batch := []sluice.Point{
		{Measurement: "m", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(1)}}},
		{Measurement: "wanted", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(2)}}},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range tapQueue + 10 { // more than the queue holds; nobody reads
			h.publish("f", batch)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publish blocked on a subscriber that does not read")
	}
	if got := slow.dropped.Load(); got != 20 {
		t.Errorf("slow subscriber dropped %d points, want 20 (10 batches of 2)", got)
	}
	if got := only.dropped.Load(); got != 10 {
		t.Errorf("filtered subscriber dropped %d points, want 10", got)
	}
	chunks, ended := only.take(nil)
	if len(chunks) != tapQueue || ended || !strings.HasPrefix(string(chunks[0]), "wanted v=2i ") || strings.Count(string(chunks[0]), "\n") != 1 {
		t.Errorf("filtered subscriber got %d chunks (ended %v), the first %q", len(chunks), ended, chunks[0])
	}
	if n, _ := queued(other); n != 0 {
		t.Errorf("a subscriber of another feed got %d batches", n)
	}
	h.unsubscribe(only)
	h.close()
	if chunks, ended := slow.take(nil); len(chunks) != tapQueue || !ended {
		t.Errorf("after close: %d chunks, ended %v; want what was queued, then the end", len(chunks), ended)
	}
	if _, err := h.subscribe("f", ""); err != errTapClosed {
		t.Errorf("subscribe after close: %v", err)
	}
	h.unsubscribe(slow) // after close: no panic
}

// A batch is formatted once: subscribers with the same filter get the
// very same bytes.
func TestTapFormatsEachBatchOnce(t *testing.T) {
	var h tapHub
	all1, all2 := mustSubscribe(t, &h, "f", ""), mustSubscribe(t, &h, "f", "")
	m1, m2 := mustSubscribe(t, &h, "f", "b"), mustSubscribe(t, &h, "f", "b")
	at := time.Unix(1, 0)
	h.publish("f", []sluice.Point{
		{Measurement: "a", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(1)}}, Time: at},
		{Measurement: "b", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(2)}}, Time: at},
		{Measurement: "a", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(3)}}, Time: at},
		{Measurement: "b", Fields: []sluice.Field{{Key: "v", Value: sluice.Int(4)}}, Time: at},
	})
	got := func(s *tapSub) []byte {
		chunks, _ := s.take(nil)
		if len(chunks) != 1 {
			t.Fatalf("%d chunks, want 1", len(chunks))
		}
		return chunks[0]
	}
	a1, a2, b1, b2 := got(all1), got(all2), got(m1), got(m2)
	if want := "a v=1i 1000000000\nb v=2i 1000000000\na v=3i 1000000000\nb v=4i 1000000000\n"; string(a1) != want {
		t.Errorf("all: %q", a1)
	}
	if want := "b v=2i 1000000000\nb v=4i 1000000000\n"; string(b1) != want {
		t.Errorf("measurement b: %q", b1)
	}
	if &a1[0] != &a2[0] || &b1[0] != &b2[0] {
		t.Error("subscribers with the same filter got separately formatted copies of one batch")
	}
}

// A subscriber that does not read holds at most tapQueueBytes, plus one
// batch, however large the batches.
func TestTapQueueIsBoundedInBytes(t *testing.T) {
	var h tapHub
	slow := mustSubscribe(t, &h, "f", "")
	batch := make([]sluice.Point, 500)
	for i := range batch {
		batch[i] = sluice.Point{Measurement: "trades", Tags: []sluice.Tag{{Key: "symbol", Value: "BTCUSDT"}},
			Fields: []sluice.Field{{Key: "price", Value: sluice.Float(42000.5)}, {Key: "id", Value: sluice.Int(int64(i))},
				{Key: "note", Value: sluice.String(strings.Repeat("x", 64))}}, Time: time.Unix(1, 0)}
	}
	chunk := len(formatBatch(batch).all)
	const batches = 100
	for range batches {
		h.publish("f", batch)
	}
	n, bytes := queued(slow)
	if bytes > tapQueueBytes+chunk {
		t.Errorf("a subscriber that does not read holds %d bytes (%d batches); the bound is %d", bytes, n, tapQueueBytes+chunk)
	}
	if kept, lost := uint64(n*len(batch)), slow.dropped.Load(); kept+lost != batches*uint64(len(batch)) || lost == 0 {
		t.Errorf("kept %d points and counted %d lost, of %d", kept, lost, batches*len(batch))
	}
	// Once read, it gets batches again.
	slow.take(nil)
	h.publish("f", batch)
	if n, _ := queued(slow); n != 1 {
		t.Errorf("after reading: %d batches queued, want 1", n)
	}
}

func TestTapLimitsSubscribers(t *testing.T) {
	h := tapHub{max: 2}
	a := mustSubscribe(t, &h, "f", "")
	mustSubscribe(t, &h, "g", "")
	for i := range 3 {
		if _, err := h.subscribe("f", strconv.Itoa(i)); err != errTapFull {
			t.Fatalf("subscriber %d past the limit: %v", 3+i, err)
		}
	}
	h.unsubscribe(a)
	mustSubscribe(t, &h, "f", "")
	if got := h.n.Load(); got != 2 {
		t.Errorf("%d subscribers counted, want 2", got)
	}
}

// A client that stops reading is disconnected once a write has waited
// tapWriteTimeout, and its place is free again.
func TestTapDisconnectsAClientThatStopsReading(t *testing.T) {
	defer func(d time.Duration) { tapWriteTimeout = d }(tapWriteTimeout)
	tapWriteTimeout = 200 * time.Millisecond
	a := &Agent{}
	a.run.Store(&running{feeds: &feedSet{feeds: map[string]*runningFeed{"f": nil}}})
	srv := httptest.NewServer(http.HandlerFunc(a.serveTap))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(1024)
	fmt.Fprintf(c, "GET /?feed=f HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tap: %v %v", resp, err)
	}
	// From here on the client reads nothing.
	batch := make([]sluice.Point, 1000)
	for i := range batch {
		batch[i] = sluice.Point{Measurement: "m", Fields: []sluice.Field{{Key: "s", Value: sluice.String(strings.Repeat("x", 90))}}}
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.tap.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a tap client that reads nothing still holds its place after 30s")
		}
		a.tap.publish("f", batch)
		time.Sleep(5 * time.Millisecond)
	}
}
