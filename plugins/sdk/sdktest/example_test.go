package sdktest_test

// The worked example of plugins/sdk/README.md, kept here so that it
// compiles and keeps the contract: a source that counts, one point per
// tick, and resumes where it stopped. Keep the two in step.

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
)

// --- README example: mysource.go ---

type Config struct {
	Symbol string       `json:"symbol"`
	Every  sdk.Duration `json:"every"`
}

type Source struct {
	cfg  Config
	next uint64
}

func New() *Source { return &Source{} }

func (s *Source) Info() sdk.Info { return sdk.Info{Name: "counter", Version: "0.1.0"} }

func (s *Source) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg := Config{Every: sdk.Duration(time.Second)}
	c := req.Check(&cfg) // decodes key by key: every bad value is named
	c.Required("symbol", cfg.Symbol != "")
	c.Duration("every", time.Duration(cfg.Every), time.Millisecond, time.Hour)
	if err := c.Err(); err != nil {
		return nil, err // all the problems, each with its key
	}
	if !req.ValidateOnly {
		s.cfg = cfg
	}
	return []sluice.Measurement{{Name: "counts", Unique: []string{"symbol", "n"}}}, nil
}

// Resume makes Source an sdk.Resumer: the SDK declares "resume" for it.
func (s *Source) Resume(pos sluice.Position) error {
	if len(pos) != 8 {
		return fmt.Errorf("position of %d bytes, want 8", len(pos))
	}
	s.next = binary.BigEndian.Uint64(pos)
	return nil
}

func (s *Source) Run(ctx context.Context, out sdk.Emitter) error {
	tick := time.NewTicker(time.Duration(s.cfg.Every))
	defer tick.Stop()
	for ; ; s.next++ {
		select {
		case now := <-tick.C:
			p := sluice.Point{
				Measurement: "counts",
				Tags:        []sluice.Tag{{Key: "symbol", Value: s.cfg.Symbol}},
				Fields:      []sluice.Field{{Key: "n", Value: sluice.Uint(s.next)}},
				Time:        now,
				Received:    now,
			}
			out.Emit(p) // never blocks: a full queue drops the point, counts it and holds the position
			out.Checkpoint(binary.BigEndian.AppendUint64(nil, s.next+1))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// --- README example: mysource_test.go ---

func TestExampleContract(t *testing.T) {
	sdktest.Check(t, func() sdk.Source { return New() }, sdktest.Contract{
		Config: `{"symbol":"ABC","every":"5ms"}`,
		Invalid: []sdktest.Invalid{
			{Config: `{"every":"soon"}`, Keys: []string{"symbol", "every"}},
		},
	})
}
