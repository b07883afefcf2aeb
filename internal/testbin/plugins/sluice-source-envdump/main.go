// Command sluice-source-envdump is a source plugin for tests only, built
// by internal/testbin and never installed: it emits one point per
// variable of its own environment (measurement "env", tags "feed" and
// "name", field "value") and one point saying what its Go runtime runs on
// (measurement "runtime", tag "feed", field "gomaxprocs"), then idles, so
// that a test can see in SQLite exactly what environment the agent gave a
// plugin.
package main

import (
	"context"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

type source struct{ feed string }

func (*source) Info() sdk.Info { return sdk.Info{Name: "envdump", Version: "test"} }

func (s *source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	s.feed = req.Feed
	return []sluice.Measurement{{Name: "env", Unique: []string{"feed", "name"}}, {Name: "runtime", Unique: []string{"feed"}}}, nil
}

func (s *source) Run(ctx context.Context, out sdk.Emitter) error {
	now := time.Now()
	rt := sluice.Point{
		Measurement: "runtime",
		Tags:        []sluice.Tag{{Key: "feed", Value: s.feed}},
		Fields:      []sluice.Field{{Key: "gomaxprocs", Value: sluice.Int(int64(runtime.GOMAXPROCS(0)))}},
		Time:        now,
		Received:    now,
	}
	if err := out.EmitWait(ctx, rt); err != nil {
		return err
	}
	for i, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		p := sluice.Point{
			Measurement: "env",
			Tags:        []sluice.Tag{{Key: "feed", Value: s.feed}, {Key: "name", Value: name}},
			Fields:      []sluice.Field{{Key: "value", Value: sluice.String(value)}},
			Time:        now.Add(time.Duration(i)),
			Received:    now,
		}
		if err := out.EmitWait(ctx, p); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func main() { sdk.Serve(&source{}) }
