package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testchromium"
)

// The live page in headless Chromium against a running agent fed by the
// simulated exchange: it lists the channel, and its tape and chart show
// the trades that landed in SQLite. The screenshot is kept in
// .cache/artifacts/live-page.png (or $SLUICE_TEST_ARTIFACTS).
func TestLivePageInBrowser(t *testing.T) {
	ctx := testchromium.New(t, 2*time.Minute)
	m := startMarket(t, 40, "BTCUSDT", "ETHUSDT")
	dir := t.TempDir()
	addr := testagent.FreeAddr(t)
	a := testagent.Launch(t, testagent.WriteConfig(t, dir, "sinks:\n  db: {type: sqlite}\n"+
		liveSinkConfig(t, dir, "live", addr)+"feeds:\n"+m.feed("spot", "db", "live")))
	a.WaitFor(t, "live sink open", func(st agent.Status) bool { return testagent.Sink(st, "live").Name == "live" })

	const btc = "trades:binance:spot:BTCUSDT"
	tok := livetest.Token(t, liveSecret, "page", time.Now().Add(time.Hour), "trades:*")
	m.run()
	// Some trades before the page opens (it shows them from the
	// channel's history), more while it is open.
	a.WaitForCount(t, `SELECT count(*) FROM trades WHERE symbol = 'BTCUSDT'`, 20)
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+addr+"/#token="+tok+"&channel="+btc),
		chromedp.WaitVisible(`#tape tr[data-id]`),
	); err != nil {
		t.Fatalf("the page shows no trade: %v", err)
	}
	time.Sleep(2 * time.Second)
	m.halt()
	want := m.tradeIDs("BTCUSDT")
	a.WaitForCount(t, `SELECT count(*) FROM trades`, int64(len(want)+len(m.tradeIDs("ETHUSDT"))))
	last := want[len(want)-1]

	// The tape's newest row is the last trade, within the time a browser
	// takes to draw it.
	var top string
	deadline := time.Now().Add(testagent.WaitTimeout)
	for top != strconv.FormatInt(last, 10) {
		if time.Now().After(deadline) {
			t.Fatalf("the tape's newest trade is %q, want %d", top, last)
		}
		time.Sleep(100 * time.Millisecond)
		top = run(t, ctx, chromedp.AttributeValue(`#tape tr[data-id]`, "data-id")).Value
	}
	ids := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#tape tr[data-id]')].map(r => r.dataset.id)`))
	points := run(t, ctx, chromedp.AttributeValue(`#chart`, "data-points")).Value
	lastPrice := run(t, ctx, chromedp.AttributeValue(`#chart`, "data-last-price")).Value
	channels := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#channels tr')].map(r => r.dataset.channel).join(' ')`))
	state := run(t, ctx, chromedp.Text(`#conn`))
	title := run(t, ctx, chromedp.Text(`#title`))
	screenshotOK := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('#chart canvas') ? 'yes' : 'no'`))
	keep(t, "live-page.png", run(t, ctx, chromedp.FullScreenshot(100)))

	// The tape: the newest trades that landed, newest first, each once.
	db := testagent.OpenDB(t, a.DB)
	rows, err := db.Query(`SELECT trade_id, price FROM trades WHERE symbol = 'BTCUSDT' ORDER BY trade_id DESC LIMIT ?`, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	var landed []string
	var lastLanded float64
	for rows.Next() {
		var id int64
		var price float64
		rows.Scan(&id, &price)
		if len(landed) == 0 {
			lastLanded = price
		}
		landed = append(landed, strconv.FormatInt(id, 10))
	}
	rows.Close()
	if len(ids) < 20 || strings.Join(ids, ",") != strings.Join(landed, ",") {
		t.Errorf("tape shows %d trades %v, want the newest that landed %v", len(ids), ids, landed)
	}
	// The chart: one point per trade it was given (the history asked for
	// when the page opened, then every live one), ending at the last.
	n, _ := strconv.Atoi(points)
	if n < 20 || n > len(want) {
		t.Errorf("chart has %s points, want 20..%d", points, len(want))
	}
	if p, _ := strconv.ParseFloat(lastPrice, 64); p != lastLanded {
		t.Errorf("chart's last price %s, want the last trade's %v", lastPrice, lastLanded)
	}
	if screenshotOK != "yes" {
		t.Error("the chart drew no canvas")
	}
	if !strings.Contains(channels, btc) || !strings.Contains(channels, "trades:binance:spot:ETHUSDT") {
		t.Errorf("channel list %q lacks the feed's channels", channels)
	}
	if !strings.HasPrefix(state, "connected") || title != btc {
		t.Errorf("connection %q, title %q", state, title)
	}
	a.Stop(t)
}

// run runs one browser action and returns its value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keep writes a test artifact to $SLUICE_TEST_ARTIFACTS, or
// .cache/artifacts at the module's root.
func keep(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("SLUICE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", ".cache", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("cannot keep %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Logf("cannot keep %s: %v", name, err)
		return
	}
	abs, _ := filepath.Abs(path)
	t.Logf("kept %s", abs)
}
