package nats_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testnats"
	natssource "github.com/sluicehq/sluice/plugins/nats"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
)

// The NATS source keeps the plugin contract against a real JetStream
// stream that recorders keep publishing to: config errors named, the
// measurements it learns from the stream declared with their uniqueness
// keys, resume after the stream sequence it checkpointed (no message
// again), a clean stop. The server runs as a process of its own, so that
// its goroutines are not counted as the plugin's.
func TestContract(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nats-server")
	}
	cl := testnats.StartCluster(t, 1)
	cl.WaitReady()
	rec := recorder(t, cl.URLs())
	publish(t, rec, trades("trades", "trade_id", "BTCUSDT", 0, 100))
	publish(t, rec, trades("agg_trades", "agg_id", "ETHUSDT", 0, 100))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // the market goes on, so that a resumed source has something new
		for i := 100; ctx.Err() == nil; i += 10 {
			if err := rec.Write(ctx, trades("trades", "trade_id", "BTCUSDT", i, 10)); err != nil && ctx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()
	sdktest.Check(t, func() sdk.Source { return natssource.New() }, sdktest.Contract{
		Config: fmt.Sprintf(`{"url":%q,"stream":%q}`, cl.URLs(), stream),
		Invalid: []sdktest.Invalid{
			{Config: `{"url":"http://x:4222","stream":"a.b","deliver":"later"}`, Keys: []string{"url", "stream", "deliver"}},
		},
		Points: 50,
	})
}
