package sdktest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
)

// counter is a source that keeps the contract: it counts from where it
// was resumed, one point per number, each checkpointed. Its flags break
// one rule each, for the harness to catch.
type counter struct {
	next uint64
	step int

	handCaps      bool // Info declares capabilities
	firstOnly     bool // Configure reports only its first problem
	keyless       bool // Configure reports a problem without its key
	undeclared    bool // emits a measurement Configure did not declare
	noKey         bool // points lack their uniqueness key
	ignoreResume  bool // starts from 0 whatever the position
	stuck         chan struct{}
	leak          chan struct{}
	checkpointsOf *plain // set on the plain wrapper: no Resume
}

func (c *counter) Info() sdk.Info {
	info := sdk.Info{Name: "counter", Version: "1"}
	if c.handCaps {
		info.Capabilities = []string{sdk.CapResume}
	}
	return info
}

func (c *counter) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	var cfg struct {
		Step int    `json:"step"`
		Name string `json:"name"`
	}
	check := req.Check(&cfg)
	check.Int("step", cfg.Step, 1, 100)
	check.Required("name", cfg.Name != "")
	err := check.Err()
	var ces sdk.ConfigErrors
	switch {
	case errors.As(err, &ces) && c.firstOnly:
		err = ces[:1]
	case errors.As(err, &ces) && c.keyless:
		err = sdk.ConfigErrors{{Msg: "something is wrong"}}
	}
	if err != nil {
		return nil, err
	}
	if !req.ValidateOnly {
		c.step = cfg.Step
	}
	return []sluice.Measurement{{Name: "count", Unique: []string{"n"}}}, nil
}

func (c *counter) Resume(pos sluice.Position) error {
	if len(pos) != 8 {
		return fmt.Errorf("position of %d bytes", len(pos))
	}
	if !c.ignoreResume {
		c.next = binary.BigEndian.Uint64(pos)
	}
	return nil
}

func (c *counter) Run(ctx context.Context, out sdk.Emitter) error {
	if c.stuck != nil {
		<-c.stuck
		return nil
	}
	if c.leak != nil {
		go func() { <-c.leak }()
	}
	for ; ; c.next += uint64(c.step) {
		p := sluice.Point{Measurement: "count", Fields: []sluice.Field{{Key: "n", Value: sluice.Uint(c.next)}}, Time: time.Unix(int64(c.next)+1, 0)}
		if c.noKey {
			p.Fields[0].Key = "m"
		}
		if c.undeclared {
			p.Measurement = "other"
		}
		if err := out.EmitWait(ctx, p); err != nil {
			return err
		}
		out.Checkpoint(binary.BigEndian.AppendUint64(nil, c.next+uint64(c.step)))
		if c.next%3 == 0 {
			out.Event(sdk.Event{Kind: sdk.EventGap, Message: "a gap"})
		}
		select { // a pace that leaves the host room to stop it
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// plain is counter without Resume: a source that checkpoints but can
// never be given its position back.
type plain struct{ c *counter }

func (p plain) Info() sdk.Info { return p.c.Info() }
func (p plain) Configure(ctx context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	return p.c.Configure(ctx, req)
}
func (p plain) Run(ctx context.Context, out sdk.Emitter) error { return p.c.Run(ctx, out) }

var contract = sdktest.Contract{
	Config:  `{"step":2,"name":"x"}`,
	Invalid: []sdktest.Invalid{{Config: `{"step":0,"bogus":1}`, Keys: []string{"step", "bogus", "name"}}},
	Points:  5,
	Timeout: 10 * time.Second,
}

func TestAGoodSourcePasses(t *testing.T) {
	sdktest.Check(t, func() sdk.Source { return &counter{} }, contract)
}

// Each broken source is caught, with a message that says what to fix.
func TestViolationsAreCaught(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  func() sdk.Source
		c    sdktest.Contract
		want string
	}{
		{"capabilities by hand", func() sdk.Source { return &counter{handCaps: true} }, contract,
			"describe: Info declares capabilities [resume] by hand"},
		{"only the first config error", func() sdk.Source { return &counter{firstOnly: true} }, contract,
			`config: {"step":0,"bogus":1}: no error at step`},
		{"a config error without its key", func() sdk.Source { return &counter{keyless: true} }, contract,
			`config: {"step":0,"bogus":1}: "something is wrong" names no key`},
		{"an undeclared measurement", func() sdk.Source { return &counter{undeclared: true} }, contract,
			"stream: other | n=0u | 1970-01-01T00:00:01Z: its measurement is not declared by Configure"},
		{"a point without its key", func() sdk.Source { return &counter{noKey: true} }, contract,
			`stream: count | m=0u | 1970-01-01T00:00:01Z: lacks "n" of its uniqueness key [n]`},
		{"a resume that starts over", func() sdk.Source { return &counter{ignoreResume: true} }, contract,
			"the source sent again count | n=0u | 1970-01-01T00:00:01Z, which that position covers"},
		{"checkpoints without Resume", func() sdk.Source { return plain{&counter{}} }, contract,
			"stream: the source checkpoints but is not an sdk.Resumer"},
		{"no config accepted", func() sdk.Source { return &counter{} }, sdktest.Contract{Config: `{"step":0}`},
			"config: Config is refused: step: must be between 1 and 100, got 0; name: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := sdktest.Verify(t, tc.src, tc.c)
			if !someContains(errs, tc.want) {
				t.Errorf("violations:\n%s\nwant one with %q", join(errs), tc.want)
			}
		})
	}
}

// A Run that does not return when its context ends is caught, and so is a
// goroutine it leaves behind.
func TestStuckAndLeakyRunsAreCaught(t *testing.T) {
	stuck := make(chan struct{})
	c := contract
	c.Timeout = 2 * time.Second
	errs := sdktest.Verify(t, func() sdk.Source { return &counter{stuck: stuck} }, c)
	close(stuck)
	if !someContains(errs, "stream: 0 points") || !someContains(errs, "stream: the source's Run did not return within 2s of its stream's end") {
		t.Errorf("violations:\n%s\nwant a stream without points and a Run that did not return", join(errs))
	}

	leak := make(chan struct{})
	errs = sdktest.Verify(t, func() sdk.Source { return &counter{leak: leak} }, contract)
	close(leak)
	if !someContains(errs, "leak: goroutines left behind") {
		t.Errorf("violations:\n%s\nwant the leaked goroutine", join(errs))
	}
}

func someContains(errs []error, s string) bool {
	for _, err := range errs {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

func join(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&b, "  %v\n", err)
	}
	return b.String()
}

// The recorder keeps what a Run hands it, for tests without gRPC.
func TestRecorder(t *testing.T) {
	var rec sdktest.Recorder
	src := &counter{}
	if _, err := src.Configure(context.Background(), sdk.ConfigureRequest{Config: []byte(`{"step":1,"name":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- src.Run(runCtx, &rec) }()
	points, err := rec.WaitPoints(ctx, 4)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	pos, covered := rec.Position()
	if n, _ := points[3].Field("n"); n.Uint() != 3 || len(pos) != 8 || covered < 4 || len(rec.Events()) == 0 {
		t.Errorf("points %v, position %x covering %d, events %v", points, pos, covered, rec.Events())
	}
	rec.Discarded("oversize", 2)
	rec.Stale("s", time.Unix(1, 0))
	rec.Recovered()
	if rec.Discards()["oversize"] != 2 || rec.Recoveries() != 1 || rec.Events()[len(rec.Events())-1].Kind != sdk.EventStale {
		t.Errorf("discards %v, recoveries %d, events %v", rec.Discards(), rec.Recoveries(), rec.Events())
	}
}
