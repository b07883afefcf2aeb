package sdk

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testpoints"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice"
)

// BenchmarkHop sends trade points from a source through the real gRPC hop
// (emitter queue, batcher, encode, transport over a unix socket, decode)
// to the host's batch handler, per plugin batch size. One op is one point.
func BenchmarkHop(b *testing.B) {
	// go-plugin logs its stdio plumbing at debug level to stderr, which
	// would split the benchmark's result lines.
	defer func(w io.Writer) { hclog.DefaultOutput = w }(hclog.DefaultOutput)
	hclog.DefaultOutput = io.Discard
	for _, size := range []int{1, 10, 100, 500, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			src := &hopSource{n: b.N}
			client, _ := plugin.TestPluginGRPCConn(b, false, map[string]plugin.Plugin{PluginName: PluginFor(src)})
			defer client.Close()
			raw, err := client.Dispense(PluginName)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := 0
			b.ReportAllocs()
			b.ResetTimer()
			err = raw.(*Client).Stream(ctx, StreamOptions{BatchSize: size, QueueSize: 10000, FlushInterval: time.Second},
				func(batch *Batch, invalid int, _ error) error {
					got += len(batch.Points) + invalid
					return nil
				})
			b.StopTimer()
			if err != nil || got != b.N {
				b.Fatalf("stream: %v; %d points, want %d", err, got, b.N)
			}
		})
	}
}

// hopSource emits n trade-like points as fast as the queue takes them and
// returns, which ends the stream after the final batch.
type hopSource struct{ n int }

func (s *hopSource) Info() Info { return Info{Name: "hop", Version: "0"} }
func (s *hopSource) Configure(context.Context, ConfigureRequest) ([]sluice.Measurement, error) {
	return nil, nil
}

func (s *hopSource) Run(ctx context.Context, out Emitter) error {
	t := time.Unix(1700000000, 0)
	for i := range s.n {
		p := testpoints.Trade(int64(i), t.Add(time.Duration(i)))
		if err := out.EmitWait(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
