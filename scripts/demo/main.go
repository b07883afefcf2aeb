// Command demo runs Sluice offline against the simulated exchange: it
// starts binancesim on loopback, runs the built agent (./bin/sluice) with
// a Binance feed pointed at it for a while, stops it with SIGTERM, and
// prints what landed in SQLite next to what the exchange generated.
//
//	make demo                   # builds first
//	go run ./scripts/demo -for 30s
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	_ "modernc.org/sqlite"

	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

var symbols = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"}

func main() {
	runFor := flag.Duration("for", 15*time.Second, "how long to run the agent")
	rate := flag.Float64("rate", 200, "trades per second the simulated exchange generates")
	dir := flag.String("dir", "var/demo", "where the demo keeps its config, buffer and SQLite file")
	flag.Parse()
	if err := run(*runFor, *rate, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(runFor time.Duration, rate float64, dir string) error {
	sluice, err := filepath.Abs("bin/sluice")
	if err != nil {
		return err
	}
	if _, err := os.Stat(sluice); err != nil {
		return fmt.Errorf("%s not built: run `make demo` (or `make build` first)", sluice)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)

	sim := binancesim.New(binancesim.Options{
		Markets:   []market.Market{market.Spot},
		Symbols:   map[market.Market][]string{market.Spot: symbols},
		TradeRate: rate,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sim.Run(ctx)
	defer sim.Close()
	ws, rest := binancesim.URLs("http://"+ln.Addr().String(), market.Spot)

	statusAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# Written by scripts/demo: Binance spot from the simulated exchange.
data_dir: %[1]s
plugin_dir: %[2]s
feeds_dir: ""
http: {listen: "%[3]s", socket: ""}
sinks:
  sqlite: {type: sqlite, path: sluice.db}
feeds:
  binance-spot:
    plugin: binance
    sinks: [sqlite]
    config:
      market: spot
      symbols: [%[4]s]
      streams: [trade, aggTrade, kline_1m, bookTicker, depth]
      ws_url: %[5]s
      rest_url: %[6]s
`, dir, filepath.Join(filepath.Dir(sluice), "plugins"), statusAddr, strings.Join(symbols, ", "), ws, rest)
	cfgPath := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}

	fmt.Printf("simulated exchange on %s (%g trades/s over %d symbols)\n", ln.Addr(), rate, len(symbols))
	fmt.Printf("running %s run -config %s for %s; status on http://%s/api/v1/status\n\n", sluice, cfgPath, runFor, statusAddr)
	cmd := exec.Command(sluice, "run", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(runFor)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	return report(filepath.Join(dir, "sluice.db"), sim)
}

func report(path string, sim *binancesim.Sim) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Printf("\nwhat landed in %s:\n\n", path)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\t")
	for _, table := range []string{"trades", "agg_trades", "candles", "book_ticker", "book", "feed_events"} {
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
			n = 0 // the table appears with its first point
		}
		fmt.Fprintf(tw, "%s\t%d\t\n", table, n)
	}
	tw.Flush()

	fmt.Printf("\ntrades per symbol (distinct trade ids landed, and the exchange's count):\n\n")
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "symbol\tlanded\tgenerated\tfirst id\tlast id\t")
	for _, s := range symbols {
		var landed int64
		var first, last sql.NullInt64
		db.QueryRow(`SELECT count(DISTINCT trade_id), min(trade_id), max(trade_id) FROM trades WHERE symbol = ?`, s).Scan(&landed, &first, &last)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", s, landed, sim.TradeCount(market.Spot, s), first.Int64, last.Int64)
	}
	tw.Flush()
	fmt.Println("\n(trades generated after the agent stopped, or before its first connect, are the difference.)")
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
