package faults

// 13. A hostile JSON-over-WebSocket server: the real agent runs the real
// jsonws plugin against a server in the test that streams valid trades
// at a steady rate and, at random moments, depth bombs (megabytes of `[`,
// plain, gzipped and permessage-deflated), a bomb that inflates past the
// size cap, and a valid trade nested too deep to parse. Every valid trade
// must land exactly once, nothing of the hostile frames may, and the
// plugin must never restart or reconnect: each hostile frame is counted
// and dropped.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
)

const (
	hostileFeed   = "hostile"
	hostileSymbol = "OK"   // the valid trades
	deepSymbol    = "DEEP" // the valid trade nested too deep: must not land
)

// hostileKind is one kind of hostile frame and the plugin counter that
// must count it.
type hostileKind struct {
	name    string
	counter string
	msg     *websocket.PreparedMessage // compressed once, sent many times
}

func hostileKinds(t *testing.T) []hostileKind {
	t.Helper()
	bomb := func(n int) []byte { return bytes.Repeat([]byte("["), n) }
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	prep := func(typ int, b []byte) *websocket.PreparedMessage {
		pm, err := websocket.NewPreparedMessage(typ, b)
		if err != nil {
			t.Fatal(err)
		}
		return pm
	}
	deep := fmt.Sprintf(`{"type":"trade","s":%q,"id":1,"p":1,"x":%s%s}`, deepSymbol, strings.Repeat("[", 200), strings.Repeat("]", 200))
	// The connection negotiates permessage-deflate, and the server
	// compresses text frames: the text bombs arrive deflated, the
	// binary ones gzipped (the plugin's decompress: auto).
	return []hostileKind{
		{"text depth bomb, deflated", "too_deep", prep(websocket.TextMessage, bomb(512<<10))},
		{"gzip depth bomb", "too_deep", prep(websocket.BinaryMessage, gz(bomb(512<<10)))},
		{"gzip bomb inflating to 16 MiB", "decompress_refused", prep(websocket.BinaryMessage, gz(bomb(16<<20)))},
		{"deflated bomb of 16 MiB", "oversize", prep(websocket.TextMessage, bomb(16<<20))},
		{"valid trade nested 201 deep", "too_deep", prep(websocket.TextMessage, []byte(deep))},
	}
}

// hostileServer streams valid trades (ids 1, 2, ...) on its first
// connection and hostile frames among them until halted (done is closed
// then); it then waits for hangUp and closes the connection normally. A second connection
// would mean the plugin lost the first: it is counted and left idle.
type hostileServer struct {
	*httptest.Server
	rng   *rand.Rand
	kinds []hostileKind
	rate  int // valid trades per second

	conns  atomic.Int32
	sent   atomic.Int64 // valid trades written: ids 1..sent
	halt   chan struct{}
	hangUp chan struct{}
	done   chan struct{} // the first connection's sender has stopped

	mu     sync.Mutex
	counts map[string]int64 // hostile frames sent, by plugin counter
	wg     sync.WaitGroup
}

func startHostileServer(t *testing.T, rng *rand.Rand, rate int) *hostileServer {
	t.Helper()
	s := &hostileServer{
		rng: rng, kinds: hostileKinds(t), rate: rate,
		halt: make(chan struct{}), hangUp: make(chan struct{}), done: make(chan struct{}),
		counts: map[string]int64{},
	}
	up := websocket.Upgrader{EnableCompression: true}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.wg.Add(1)
		defer s.wg.Done()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if s.conns.Add(1) > 1 {
			drainWS(c)
			return
		}
		go drainWS(c) // answers the plugin's pings
		s.stream(c)
		<-s.hangUp
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
	}))
	t.Cleanup(func() {
		s.stopStreaming()
		select {
		case <-s.hangUp:
		default:
			close(s.hangUp)
		}
		s.CloseClientConnections()
		s.Close()
		s.wg.Wait()
	})
	return s
}

func drainWS(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// stream writes trades in ticks of 10ms and, on about one tick in ten, a
// hostile frame of a random kind.
func (s *hostileServer) stream(c *websocket.Conn) {
	defer close(s.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	per := max(1, s.rate/100)
	for {
		select {
		case <-s.halt:
			return
		case <-tick.C:
		}
		for range per {
			id := s.sent.Load() + 1
			msg := fmt.Appendf(nil, `{"type":"trade","s":%q,"id":%d,"p":%d.5}`, hostileSymbol, id, id)
			if c.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
			s.sent.Store(id)
		}
		if s.rng.IntN(10) == 0 {
			k := s.kinds[s.rng.IntN(len(s.kinds))]
			if c.WritePreparedMessage(k.msg) != nil {
				return
			}
			s.mu.Lock()
			s.counts[k.counter]++
			s.mu.Unlock()
		}
	}
}

func (s *hostileServer) stopStreaming() {
	select {
	case <-s.halt:
	default:
		close(s.halt)
	}
}

func (s *hostileServer) hostileSent() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

func hostileStatus(st agent.Status) agent.FeedStatus { return testagent.Feed(st, hostileFeed) }

func TestJSONWSHostileFrames(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	const name = "13 jsonws hostile frames"
	rng := rand.New(rand.NewPCG(seed(t), 0x5eed))
	srv := startHostileServer(t, rng, pick(500, 2000))
	a := newAgentRig(t, fmt.Sprintf(`pipeline: {batch_size: 500, flush_interval: %s, retry_initial: 50ms, retry_max: 500ms}
sinks:
  sqlite: {type: sqlite, path: sluice.db}
feeds:
  %s:
    plugin: jsonws
    sinks: [sqlite]
    config:
      url: %s
      compression: true
      rules:
        - name: trade
          match: [{path: type, equals: trade}]
          measurement: trades
          tags: {symbol: s}
          fields: {trade_id: {path: id, type: int}, price: {path: p, type: float}}
          unique: [symbol, trade_id]
`, flushInterval, hostileFeed, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws"))
	db := sqliteStore{name: "sqlite", path: filepath.Join(a.dir, "sluice.db")}
	began := time.Now()

	a.start()
	st := a.waitFor("the feed running", startTimeout, func(st agent.Status) bool {
		f := hostileStatus(st)
		return f.State == agent.FeedRunning && f.Pid != 0
	})
	pid := hostileStatus(st).Pid
	a.sleep(pick(3*time.Second, 20*time.Second))
	srv.stopStreaming()
	select {
	case <-srv.done:
	case <-time.After(startTimeout):
		t.Fatal("the server did not stop streaming")
	}
	sent := srv.sent.Load()
	bombs := srv.hostileSent()
	t.Logf("sent %d valid trades and hostile frames %v", sent, bombs)
	if len(bombs) == 0 {
		t.Fatal("no hostile frame was sent: the test proved nothing")
	}

	// Everything sent lands, from the one plugin process.
	deadline := time.Now().Add(landTimeout)
	for db.distinct(t, "trades", "trade_id")[hostileSymbol] < sent && time.Now().Before(deadline) {
		a.sleep(5 * pollEvery)
	}
	st, _ = a.poll()
	f := hostileStatus(st)
	if f.Pid != pid || f.Restarts != 0 || f.State != agent.FeedRunning || len(a.plugins) != 1 {
		t.Errorf("plugin pid %d → %d (%d pids seen), %d restarts, state %s: the feed must never restart", pid, f.Pid, len(a.plugins), f.Restarts, f.State)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections: a hostile frame cost the connection", n)
	}

	// The plugin's counters, from the stats line it logs when the
	// server closes the connection.
	close(srv.hangUp)
	var stats string
	for stats == "" {
		stats = regexp.MustCompile(`msg="jsonws stats".*`).FindString(a.proc.Log())
		if stats == "" && time.Now().After(deadline) {
			t.Fatal("the plugin logged no jsonws stats line after the server closed the connection")
		}
		a.sleep(pollEvery)
	}
	want := map[string]int64{"messages": sent}
	for _, k := range srv.kinds {
		want[k.counter] = bombs[k.counter]
	}
	for counter, n := range want {
		if !regexp.MustCompile(fmt.Sprintf(`\b%s=%d\b`, counter, n)).MatchString(stats) {
			t.Errorf("%s\nwant %s=%d", stats, counter, n)
		}
	}
	a.stop()

	ids := db.ids(t, "trades", "trade_id", hostileSymbol)
	tr := truth{1, sent}
	r := result{Scenario: name, Sink: "sqlite", Generated: sent, Dropped: a.dropped("sqlite"), Elapsed: time.Since(began)}
	for id, n := range ids {
		if id < tr.first || id > tr.last {
			r.Unexpected++
			continue
		}
		r.Landed++
		r.Duplicated += n - 1
	}
	r.Missing = sent - r.Landed
	record(r)
	t.Logf("%s:\n%s", name, formatResults([]result{r}))
	if r.Missing != 0 || r.Duplicated != 0 || r.Unexpected != 0 || r.Dropped != 0 {
		t.Errorf("%d of %d valid trades missing (%s), %d duplicated, %d unexpected, %d dropped",
			r.Missing, sent, missingRanges(ids, tr), r.Duplicated, r.Unexpected, r.Dropped)
	}
	if n := db.distinct(t, "trades", "trade_id")[deepSymbol]; n != 0 {
		t.Errorf("%d trades from the too-deep frame landed", n)
	}
}
