package binance_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// runInProcess configures a Source and runs it into a store until the
// returned stop is called; stop returns Run's error.
func runInProcess(t *testing.T, cfg []byte, resume []byte) (*store, func() error) {
	t.Helper()
	src := binance.New(testLogger(t))
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "test", Config: cfg}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	st := &store{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.RunTo(ctx, resume, st) }()
	var stopped bool
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of its context ending")
			}
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return st, stop
}

func TestInProcessDropsAndRotation(t *testing.T) {
	sim := startSim(t, binancesim.Options{})
	syms := []string{"BTCUSDT", "ETHUSDT"}
	d := drive(sim)
	defer d.stop()
	st, stop := runInProcess(t, config(sim, binance.Spot, map[string]any{
		"symbols": syms, "streams": []string{"trade", "aggTrade"},
		"rotate_after": "1500ms", "streams_per_connection": 3,
	}), nil)
	waitFor(t, "first trades", 5*time.Second, func() bool { return st.count(binance.MeasTrades, "") > 20 })
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		how := []binancesim.Close{binancesim.Abrupt, binancesim.CloseGoingAway, binancesim.ClosePolicy, binancesim.CloseNormal}[i]
		sim.DropRandom(1, how)
	}
	time.Sleep(3500 * time.Millisecond) // a rotation or two
	d.stop()
	waitFor(t, "every generated trade", 10*time.Second, func() bool {
		return landedAll(sim, st, binance.Spot, syms, nil, tradeIDs, aggIDs)
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	checkIDs(t, sim, st, binance.Spot, tradeIDs, syms, nil)
	checkIDs(t, sim, st, binance.Spot, aggIDs, syms, nil)
	if len(st.events(binance.FeedRotate)) == 0 {
		t.Errorf("no rotation reported; events: %q", st.events(""))
	}
	t.Logf("events: %q", st.events(""))
}
