// Command sluice-source-envdump is a source plugin for tests only, built
// by internal/testbin and never installed: it emits one point per
// variable of its own environment (measurement "env", tag "name", field
// "value"), then idles, so that a test can see in SQLite exactly what
// environment the agent gave a plugin.
package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

type source struct{}

func (source) Info() sdk.Info { return sdk.Info{Name: "envdump", Version: "test"} }

func (source) Configure(context.Context, sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	return []sluice.Measurement{{Name: "env", Unique: []string{"name"}}}, nil
}

func (source) Run(ctx context.Context, out sdk.Emitter) error {
	now := time.Now()
	for i, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		p := sluice.Point{
			Measurement: "env",
			Tags:        []sluice.Tag{{Key: "name", Value: name}},
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

func main() { sdk.Serve(source{}) }
