package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/wire"
	"github.com/sluicehq/sluice/plugins/jsonws"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// sortFields puts a point's fields in key order: the order of fields
// carries no meaning, and the two plugins list them differently.
func sortFields(p sluice.Point) sluice.Point {
	p.Fields = slices.Clone(p.Fields)
	slices.SortFunc(p.Fields, func(a, b sluice.Field) int { return strings.Compare(a.Key, b.Key) })
	return p
}

// binancePoints is what the binance plugin's parser makes of the frames.
func binancePoints(t testing.TB, frames [][]byte, received time.Time) []sluice.Point {
	t.Helper()
	var want []sluice.Point
	for _, f := range frames {
		points, _, err := wire.ParseFrame(market.Spot, f, received, nil)
		if err != nil {
			t.Fatalf("wire.ParseFrame(%s): %v", f, err)
		}
		want = append(want, points...)
	}
	return want
}

// The jsonws example and the binance plugin's parser make the same
// points of the same recorded frames: measurement, tags, typed fields,
// event time and receive time.
func TestBinanceExampleMatchesBinanceParser(t *testing.T) {
	frames := spotTradeFrames(t)
	received := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	want := binancePoints(t, frames, received)

	cfg, err := jsonws.FeedConfig([]byte(example(t, "jsonws-binance.yaml")), "")
	if err != nil {
		t.Fatal(err)
	}
	results, err := jsonws.New().Sample(context.Background(), sdk.ConfigureRequest{Config: cfg}, frames, received)
	if err != nil {
		t.Fatal(err)
	}
	var got []sluice.Point
	for i, r := range results {
		if len(r.Errors) > 0 || len(r.Points) == 0 {
			t.Fatalf("frame %d: %+v", i, r)
		}
		got = append(got, r.Points...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d points, binance parser %d", len(got), len(want))
	}
	for i := range want {
		g, w := sortFields(got[i]), sortFields(want[i])
		if !g.Equal(&w) {
			t.Errorf("frame %d:\njsonws  %s\nbinance %s", i, sdk.FormatPoint(g), sdk.FormatPoint(w))
		}
	}
	// The declared uniqueness key is the binance plugin's too.
	var ms []sluice.Measurement
	for _, m := range market.Measurements() {
		if m.Name == market.MeasTrades {
			ms = append(ms, m)
		}
	}
	var rules struct{ Rules []jsonws.Rule }
	json.Unmarshal(cfg, &rules)
	mapper, errs := jsonws.NewMapper(rules.Rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, want := fmt.Sprint(mapper.Measurements()), fmt.Sprint(ms); got != want {
		t.Errorf("jsonws declares %s, binance %s", got, want)
	}
}

// binanceServer speaks the combined-stream subscribe protocol and sends
// the recorded trade frames, each twice, and an unrelated control frame.
func binanceServer(t *testing.T, frames [][]byte) *wsServer {
	return newWSServer(t, func(c *websocket.Conn) {
		var req struct {
			Method string
			Params []string
			ID     int
		}
		if err := c.ReadJSON(&req); err != nil || req.Method != "SUBSCRIBE" {
			return
		}
		c.WriteJSON(map[string]any{"result": nil, "id": req.ID})
		for range 2 {
			for _, f := range frames {
				c.WriteMessage(websocket.TextMessage, f)
			}
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"result":null,"id":99}`))
		drain(c)
	})
}

// loginServer speaks the protocol in jsonws-login.yaml and checks the
// credentials. Tickers flow only after its ping has been answered.
func loginServer(t *testing.T, key, secret string, pongs *atomic.Int32) *wsServer {
	return newWSServer(t, func(c *websocket.Conn) {
		var auth map[string]any
		if err := c.ReadJSON(&auth); err != nil {
			return
		}
		if auth["type"] != "auth" || auth["api_key"] != key || auth["api_secret"] != secret {
			c.WriteJSON(map[string]any{"type": "error", "message": "invalid credentials"})
			drain(c)
			return
		}
		c.WriteJSON(map[string]any{"type": "authenticated"})
		var sub struct {
			Type string
			Data struct{ Channel string }
		}
		if err := c.ReadJSON(&sub); err != nil || sub.Type != "subscribe" || sub.Data.Channel != "ticker" {
			return
		}
		c.WriteJSON(map[string]any{"type": "subscribed", "data": map[string]any{"channel": "ticker"}})
		c.WriteJSON(map[string]any{"type": "ping"})
		if !readUntil(c, `"type":"pong"`) {
			return
		}
		pongs.Add(1)
		for i, sym := range []string{"BTC-USD", "ETH-USD", "BTC-USD"} {
			c.WriteJSON(map[string]any{"type": "ticker", "data": map[string]any{
				"symbol": sym, "bid": fmt.Sprintf("%d.5", 100+i), "ask": fmt.Sprintf("%d.75", 100+i), "last": "100.6",
				"ts": fmt.Sprintf("2024-03-04T05:06:0%dZ", i)}})
		}
		drain(c)
	})
}

// blocksServer speaks the protocol in jsonws-blocks.yaml: a text ping
// first, a status message, then two blocks, the second gzipped in a
// binary frame.
func blocksServer(t *testing.T) *wsServer {
	return newWSServer(t, func(c *websocket.Conn) {
		if !readUntil(c, `"subscribe"`) {
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte("ping"))
		if !readUntil(c, "pong") {
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"op":"status","tip":839999}`))
		c.WriteMessage(websocket.TextMessage, []byte(`{"height":840000,"hash":"h0","time":1713571767,"size":2325617,"tx":[`+
			`{"txid":"a","value":5000,"fee":10},{"txid":"b","value":150000000,"fee":20},{"txid":"c","value":200000000}]}`))
		c.WriteMessage(websocket.BinaryMessage, gz(t, []byte(`{"height":840001,"hash":"h1","time":1713572000,"tx":[`+
			`{"txid":"d","value":100000000,"fee":5},{"txid":"e","value":99999999,"fee":5}]}`)))
		drain(c)
	})
}

func TestExampleFeedsEndToEnd(t *testing.T) {
	frames := spotTradeFrames(t)
	const key, secret = "key-e2e-123", "secret-e2e-456"
	secretFile := filepath.Join(t.TempDir(), "acme.secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	var pongs atomic.Int32

	bsrv, lsrv, ksrv := binanceServer(t, frames), loginServer(t, key, secret, &pongs), blocksServer(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "invalid token", http.StatusUnauthorized)
	}))
	t.Cleanup(refusing.Close)

	a := startAgent(t, map[string]string{
		"binance.yaml": example(t, "jsonws-binance.yaml", "wss://stream.binance.com:9443/stream", bsrv.url("/stream")),
		"login.yaml": example(t, "jsonws-login.yaml", "wss://stream.example.com/v1/ws", lsrv.url("/v1/ws"),
			"/etc/sluice/acme.secret", secretFile),
		"blocks.yaml": example(t, "jsonws-blocks.yaml", "wss://blocks.example.org/ws", ksrv.url("/ws")),
		// The same login feed against a server that refuses the handshake.
		"refused.yaml": example(t, "jsonws-login.yaml", "wss://stream.example.com/v1/ws", "ws"+strings.TrimPrefix(refusing.URL, "http")+"/",
			"/etc/sluice/acme.secret", secretFile, "acme-ticker:", "refused:"),
	}, "ACME_API_KEY="+key)

	// Data points plus one feed_events "connect" point per feed.
	wantPoints := map[string]uint64{
		"binance-spot-trades-jsonws": uint64(2*len(frames)) + 1,
		"acme-ticker":                3 + 1,
		"chain-blocks":               2 + 3 + 1,
	}
	st := a.WaitFor(t, "every example's points written and the refused feed failed", func(st agent.Status) bool {
		var sum uint64
		for name, n := range wantPoints {
			_, points, _, _ := feed(st, name)
			if points < n {
				return false
			}
			sum += points
		}
		state, _, _, _ := feed(st, "refused")
		return state == "failed" && written(st) >= sum
	})
	// The status message matched the blocks example's alive rule: not
	// discarded as unmatched.
	if d := testagent.Feed(st, "chain-blocks").PluginDiscarded; len(d) != 0 {
		t.Errorf("chain-blocks discarded %v; the alive rule should match its status message", d)
	}
	state, _, restarts, lastErr := feed(st, "refused")
	if restarts != 0 || !strings.Contains(lastErr, "handshake refused: 401 Unauthorized: invalid token") {
		t.Errorf("refused feed: state %s, %d restarts, error %q; want failed at once with the server's reason", state, restarts, lastErr)
	}
	a.Stop(t)
	db := testagent.OpenDB(t, a.DB)

	// Binance: every frame was sent twice; the uniqueness key keeps one
	// row per trade, and each row is what the binance parser makes of it.
	want := binancePoints(t, frames, time.Time{})
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM trades`); n != int64(len(want)) {
		t.Errorf("%d trades rows, want %d", n, len(want))
	}
	for _, p := range want {
		id, _ := p.Field("trade_id")
		var exchange, market, symbol, side string
		var price, qty float64
		var ts int64
		err := db.QueryRow(`SELECT exchange, market, symbol, side, price, quantity, time FROM trades WHERE trade_id = ?`, id.Int()).
			Scan(&exchange, &market, &symbol, &side, &price, &qty, &ts)
		if err != nil {
			t.Errorf("trade %d: %v", id.Int(), err)
			continue
		}
		wp, _ := p.Field("price")
		wq, _ := p.Field("quantity")
		const row = "%s|%s|%s|%s|%v|%v|%d"
		got := fmt.Sprintf(row, exchange, market, symbol, side, price, qty, ts)
		wantRow := fmt.Sprintf(row, tag(&p, "exchange"), tag(&p, "market"), tag(&p, "symbol"), tag(&p, "side"), wp.Float(), wq.Float(), p.Time.UnixNano())
		if got != wantRow {
			t.Errorf("trade %d row %s, binance parser %s", id.Int(), got, wantRow)
		}
	}

	// Login: the rows exist only if login, subscribe and the ping answer
	// all worked; the unique key (exchange, symbol, time) keeps all three.
	if pongs.Load() < 1 {
		t.Error("the login server never received a pong")
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM ticker WHERE exchange = 'acme'`); n != 3 {
		t.Errorf("%d ticker rows, want 3", n)
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM ticker WHERE symbol = 'ETH-USD' AND bid = 101.5 AND ask = 101.75 AND time = ?`,
		time.Date(2024, 3, 4, 5, 6, 1, 0, time.UTC).UnixNano()); n != 1 {
		t.Error("the ETH-USD ticker row is not as sent")
	}

	// Blocks: one row per block, one per transaction of at least 1e8.
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM blocks`); n != 2 {
		t.Errorf("%d blocks rows, want 2", n)
	}
	if n := testagent.QueryInt(t, db, `SELECT tx_count FROM blocks WHERE height = 840000 AND hash = 'h0'`); n != 3 {
		t.Errorf("block 840000 tx_count %d", n)
	}
	rows, err := db.Query(`SELECT txid, height FROM large_transactions ORDER BY txid`)
	if err != nil {
		t.Fatal(err)
	}
	var large []string
	for rows.Next() {
		var id string
		var h int64
		rows.Scan(&id, &h)
		large = append(large, fmt.Sprintf("%s@%d", id, h))
	}
	rows.Close()
	if fmt.Sprint(large) != "[b@840000 c@840000 d@840001]" {
		t.Errorf("large transactions %v", large)
	}

	// The connection lifecycle landed as feed_events; the refused feed's
	// failure carries the server's reason.
	for _, f := range []string{"binance-spot-trades-jsonws", "acme-ticker", "chain-blocks"} {
		if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE feed = ? AND kind = 'connect'`, f); n != 1 {
			t.Errorf("%s: %d connect events, want 1", f, n)
		}
	}
	if n := testagent.QueryInt(t, db, `SELECT count(*) FROM feed_events WHERE feed = 'refused' AND kind = 'failed' AND message LIKE '%invalid token%'`); n != 1 {
		t.Errorf("%d failed events for the refused feed, want 1", n)
	}
	for _, s := range []string{key, secret} {
		if strings.Contains(a.Log(), s) {
			t.Errorf("a secret reached the agent's log")
		}
	}
}

func tag(p *sluice.Point, key string) string {
	v, _ := p.Tag(key)
	return v
}

// sluice validate runs each example's config, rules included, through
// the plugin; a broken rule is reported with its key.
func TestValidateExamples(t *testing.T) {
	dir := t.TempDir()
	feedsDir := filepath.Join(dir, "feeds.d")
	os.MkdirAll(feedsDir, 0o755)
	secretFile := filepath.Join(dir, "acme.secret")
	os.WriteFile(secretFile, []byte("s"), 0o600)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(feedsDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("binance.yaml", example(t, "jsonws-binance.yaml"))
	write("login.yaml", example(t, "jsonws-login.yaml", "/etc/sluice/acme.secret", secretFile))
	write("blocks.yaml", example(t, "jsonws-blocks.yaml"))
	// The exchange examples, all writing trades with the same key.
	for _, name := range []string{"coinbase", "kraken", "okx", "bybit", "htx", "bitfinex", "bitstamp"} {
		write(name+".yaml", example(t, "jsonws-"+name+".yaml"))
	}
	mainFile := filepath.Join(dir, "sluice.yaml")
	os.WriteFile(mainFile, []byte(fmt.Sprintf("data_dir: %s\nplugin_dir: %s\nfeeds_dir: feeds.d\nsinks:\n  sqlite: {type: sqlite}\n",
		dir, testbin.PluginDir(t))), 0o644)

	run := func(env ...string) (string, int) {
		cmd := exec.Command(testbin.Sluice(t), "validate", "-config", mainFile)
		for _, kv := range testbin.Env() {
			if !strings.HasPrefix(kv, "ACME_API_KEY=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run("ACME_API_KEY=k"); code != 0 || !strings.Contains(out, "ok (1 sinks, 10 feeds)") {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	// Without the environment variable the login feed could not log in.
	out, code := run()
	if want := filepath.Join(feedsDir, "login.yaml") + ": feeds.acme-ticker.config.on_open[0].send: environment variable ACME_API_KEY is not set"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("validate without ACME_API_KEY: exit %d\n%s\nwant %s", code, out, want)
	}

	broken := example(t, "jsonws-blocks.yaml", "type: uint}", "type: decimal}", `"tx.#(value>=100000000)#"`, `"tx.#(value>=100000000"`)
	write("blocks.yaml", broken)
	out, code = run("ACME_API_KEY=k")
	for _, want := range []string{
		`feeds.chain-blocks.config.rules[0].fields.height: unknown field type "decimal"`,
		`feeds.chain-blocks.config.rules[1].each: unclosed '('`,
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("validate of a broken rule: exit %d\n%s\nwant a line with %s", code, out, want)
		}
	}
}

// `sluice validate -sample` prints the points the feed's rules make of
// each message: the agent hands the messages to the plugin through the
// protocol's Sample call.
func TestSampleMode(t *testing.T) {
	frames := spotTradeFrames(t)
	dir := t.TempDir()
	sample := filepath.Join(dir, "frames.jsonl")
	os.WriteFile(sample, append(bytes.Join(frames, []byte("\n")), []byte("\n\n# a comment\n{\"result\":null,\"id\":1}\n")...), 0o644)
	feedFile := filepath.Join(repoRoot(t), "config", "examples", "jsonws-binance.yaml")
	var stderr bytes.Buffer
	var want strings.Builder
	for i, p := range binancePoints(t, frames, time.Time{}) {
		fmt.Fprintf(&want, "line %d:\n  %s\n", i+1, sdk.FormatPoint(sortFields(p)))
	}
	// Binance's ack, {"result":null,"id":1}, is what on_open waits for.
	fmt.Fprintf(&want, "line %d: an ack on_open[0] waits for\n", len(frames)+3)
	fmt.Fprintf(&want, "%d messages: %d points, 0 mapping errors, 0 unmatched, 1 without points\n", len(frames)+1, len(frames))

	os.MkdirAll(filepath.Join(dir, "feeds.d"), 0o755)
	example, err := os.ReadFile(feedFile)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "feeds.d", "binance.yaml"), example, 0o644)
	mainFile := filepath.Join(dir, "sluice.yaml")
	os.WriteFile(mainFile, []byte(fmt.Sprintf("data_dir: %s\nplugin_dir: %s\nfeeds_dir: feeds.d\nsinks:\n  sqlite: {type: sqlite}\n",
		dir, testbin.PluginDir(t))), 0o644)
	validate := exec.Command(testbin.Sluice(t), "validate", "-config", mainFile, "-sample", sample)
	validate.Env = testbin.Env()
	stderr.Reset()
	validate.Stderr = &stderr
	out, err := validate.Output()
	if err != nil {
		t.Fatalf("sluice validate -sample: %v\n%s", err, stderr.String())
	}
	if string(out) != want.String() {
		t.Errorf("sluice validate -sample output:\n%s\nwant:\n%s", out, want.String())
	}

	// A message the rules cannot map is shown with its error, and the
	// command fails; -feed names the feed.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":"many","p":"1","q":"1","T":1,"m":true}}`+"\n"), 0o644)
	validate = exec.Command(testbin.Sluice(t), "validate", "-config", mainFile, "-sample", bad, "-feed", "binance-spot-trades-jsonws")
	validate.Env = testbin.Env()
	stderr.Reset()
	validate.Stderr = &stderr
	out, err = validate.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "line 1:\n  error: ") ||
		!strings.Contains(stderr.String(), "the sample did not map cleanly: 1 of 1 messages had mapping errors") {
		t.Errorf("a message with a mapping error: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
}
