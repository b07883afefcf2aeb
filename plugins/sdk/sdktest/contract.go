package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Contract is what Check needs to know about a source to check it.
type Contract struct {
	// Config is a valid `config:` block for the source, as JSON: Check
	// configures and streams with it. The source must emit Points points
	// with it within Timeout (point it at a test server).
	Config string
	// Invalid are configs with problems, each with the keys the source
	// must name: every one, in one answer.
	Invalid []Invalid
	// Samples, for a Sampler, are messages Config maps to points without
	// errors.
	Samples [][]byte
	// Points is how many points each run must emit before Check stops it
	// (default 10).
	Points int
	// Timeout bounds every wait (default 30s).
	Timeout time.Duration
}

// Invalid is a config with problems and the keys they are at.
type Invalid struct {
	Config string
	Keys   []string
}

// Check runs newSource through the contract, each source behind the real
// gRPC boundary (Serve), and reports every violation as an error of t:
//
//   - describe: a name and a version; no capabilities declared by hand
//     (the SDK derives them from the interfaces the source implements);
//   - config: Config is accepted with its measurements declared (names
//     and uniqueness keys unique, none empty); an unknown key is refused
//     under its name; each Invalid config is refused with a ConfigError
//     at each of its keys, all in one answer, every error naming a key;
//   - stream: Points points arrive, each of a declared measurement, with
//     a field and a time, carrying every tag or field its uniqueness key
//     names; events are of kinds the protocol has; a Resumer checkpoints,
//     and a source that is not one does not; a Reconfigurer takes Config
//     again while it streams; cancelled, the stream ends and Run returns
//     within Timeout;
//   - resume, for a Resumer: a new source resumed from the last position
//     of the first run streams without repeating a point that position
//     covers (same measurement and uniqueness key);
//   - sample, for a Sampler: Samples map to declared points, one result
//     each; an invalid config is refused;
//   - no goroutine is left behind once the plugins have stopped.
//
// Check must not run in parallel with other tests: it looks for leaked
// goroutines in the whole process.
func Check(t *testing.T, newSource func() sdk.Source, c Contract) {
	t.Helper()
	for _, err := range Verify(t, newSource, c) {
		t.Error(err)
	}
}

// Verify runs Check's checks and returns every violation found (nil for
// none). t is for setup and cleanup only.
func Verify(t testing.TB, newSource func() sdk.Source, c Contract) []error {
	t.Helper()
	if c.Points <= 0 {
		c.Points = 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	v := &verifier{t: t, newSource: newSource, c: c}
	ignore := goleak.IgnoreCurrent()
	v.describe()
	if ms, ok := v.config(); ok {
		var pos sluice.Position
		var covered []sluice.Point
		if ms, pos, covered = v.stream(ms); pos != nil {
			v.resume(ms, pos, covered)
		}
		v.sample(ms)
	}
	if err := goleak.Find(ignore); err != nil {
		v.fail("leak", "goroutines left behind once the plugins stopped: %v", err)
	}
	return v.errs
}

type verifier struct {
	t         testing.TB
	newSource func() sdk.Source
	c         Contract
	errs      []error
}

func (v *verifier) fail(check, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("sdktest: %s: %s", check, fmt.Sprintf(format, args...)))
}

func (v *verifier) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), v.c.Timeout)
}

func (v *verifier) stop(check string, p *Plugin) {
	if err := p.Stop(v.c.Timeout); err != nil {
		v.fail(check, "%v", err)
	}
}

func (v *verifier) describe() {
	src := v.newSource()
	if caps := src.Info().Capabilities; len(caps) > 0 {
		v.fail("describe", "Info declares capabilities %v by hand: leave them out; the SDK derives them from the interfaces the source implements (%v)",
			caps, sdk.Capabilities(src))
	}
	p := Serve(v.t, src)
	defer v.stop("describe", p)
	ctx, cancel := v.ctx()
	defer cancel()
	info, err := p.Describe(ctx)
	switch {
	case err != nil:
		v.fail("describe", "%v", err)
	case info.Name == "" || info.Version == "":
		v.fail("describe", "name %q, version %q: both are required", info.Name, info.Version)
	case !slices.Equal(info.Capabilities, sdk.Capabilities(src)):
		v.fail("describe", "capabilities %v, want %v", info.Capabilities, sdk.Capabilities(src))
	}
}

// config checks the answers to Configure and returns the measurements
// Config declares when only validated; ok is false when it is refused. A
// source that learns its measurements only when it connects (the NATS
// source reads them from its stream) may declare none here: they are
// checked when it streams.
func (v *verifier) config() (ms []sluice.Measurement, ok bool) {
	p := Serve(v.t, v.newSource())
	defer v.stop("config", p)
	ctx, cancel := v.ctx()
	defer cancel()
	ms, err := p.Configure(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: json.RawMessage(v.c.Config), ValidateOnly: true})
	if err != nil {
		v.fail("config", "Config is refused: %v", err)
		return nil, false
	}
	if len(ms) > 0 {
		v.measurements(ms)
	}

	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v.c.Config), &obj); err != nil || obj == nil {
		v.fail("config", "Config is not a JSON object: %v", err)
	} else {
		obj["sdktest_unknown_key"] = json.RawMessage("true")
		raw, _ := json.Marshal(obj)
		v.invalid(ctx, p, Invalid{Config: string(raw), Keys: []string{"sdktest_unknown_key"}})
	}
	for _, in := range v.c.Invalid {
		v.invalid(ctx, p, in)
	}
	return ms, true
}

func (v *verifier) measurements(ms []sluice.Measurement) {
	if len(ms) == 0 {
		v.fail("config", "Config declares no measurement")
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if m.Name == "" || seen[m.Name] {
			v.fail("config", "measurement %q is empty or declared twice", m.Name)
		}
		seen[m.Name] = true
		keys := map[string]bool{}
		for _, k := range m.Unique {
			if k == "" || keys[k] {
				v.fail("config", "measurement %q: uniqueness key %v has an empty or repeated name", m.Name, m.Unique)
			}
			keys[k] = true
		}
	}
}

func (v *verifier) invalid(ctx context.Context, p *Plugin, in Invalid) {
	_, err := p.Configure(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: json.RawMessage(in.Config), ValidateOnly: true})
	var ces sdk.ConfigErrors
	if !errors.As(err, &ces) {
		v.fail("config", "%s: got %v, want ConfigErrors at %v", in.Config, err, in.Keys)
		return
	}
	got := map[string]bool{}
	for _, e := range ces {
		if e.Key == "" {
			v.fail("config", "%s: %q names no key", in.Config, e.Msg)
		}
		got[e.Key] = true
	}
	for _, k := range in.Keys {
		if !got[k] {
			v.fail("config", "%s: no error at %s; the errors: %v", in.Config, k, err)
		}
	}
}

// run is what one stream delivered.
type run struct {
	declared []sluice.Measurement // by the Configure before the stream
	points   []sluice.Point
	// covered is how many of points the last position surely covers:
	// those of the batches before the one that carried it.
	covered int
	pos     sluice.Position
	events  []sdk.Event
	invalid int
	err     error
}

// streamRun configures a new source with Config and streams from resume
// until Points points (and, for a Resumer, a position after them) have
// arrived, then cancels the stream and stops the plugin.
func (v *verifier) streamRun(check string, resume sluice.Position) (run, sdk.Source) {
	src := v.newSource()
	_, resumer := src.(sdk.Resumer)
	p := Serve(v.t, src)
	defer v.stop(check, p)
	ctx, cancel := v.ctx()
	defer cancel()
	declared, err := p.Configure(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: json.RawMessage(v.c.Config)})
	if err != nil {
		return run{err: fmt.Errorf("configure: %w", err)}, src
	}
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	var (
		r             = run{declared: declared}
		reconfigured  = make(chan error, 1)
		reconfiguring bool
	)
	r.err = p.Stream(streamCtx, sdk.StreamOptions{Resume: resume, FlushInterval: 20 * time.Millisecond},
		func(b *sdk.Batch, invalid int, _ error) error {
			if b.Position != nil {
				// The position covers every point of the batches before
				// this one, and this one's up to the source's checkpoint,
				// which the host cannot tell: only the former are sure.
				r.pos, r.covered = b.Position, len(r.points)
			}
			r.points = append(r.points, b.Points...)
			r.events = append(r.events, b.Events...)
			r.invalid += invalid
			if _, ok := src.(sdk.Reconfigurer); ok {
				// Once the stream runs, the config it runs with again,
				// on a call of its own as the agent's reload makes it.
				if !reconfiguring {
					reconfiguring = true
					go func() {
						_, err := p.Configure(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: json.RawMessage(v.c.Config)})
						reconfigured <- err
					}()
				}
			}
			if len(r.points) >= v.c.Points && (!resumer || r.covered >= v.c.Points) {
				stopStream()
			}
			return nil
		})
	if reconfiguring {
		if err := <-reconfigured; err != nil && !errors.Is(err, sdk.ErrRestartNeeded) {
			v.fail(check, "a Reconfigurer refused, while streaming, the config it streams with: %v", err)
		}
	}
	switch {
	case streamCtx.Err() != nil && ctx.Err() == nil:
		r.err = nil // stopped by us
	case ctx.Err() != nil || status.Code(r.err) == codes.DeadlineExceeded:
		// The deadline can reach the stream (from the server's side)
		// before ctx reports it.
		r.err = fmt.Errorf("%d points (%d covered by a position) within %v, want %d", len(r.points), r.covered, v.c.Timeout, v.c.Points)
	case r.err == nil:
		r.err = fmt.Errorf("the source ended its stream after %d points, want %d", len(r.points), v.c.Points)
	}
	return r, src
}

// stream checks one run and returns the measurements it was checked
// against, its last position and the points that position covers.
func (v *verifier) stream(ms []sluice.Measurement) ([]sluice.Measurement, sluice.Position, []sluice.Point) {
	r, src := v.streamRun("stream", nil)
	if r.err != nil {
		v.fail("stream", "%v", r.err)
	}
	if len(ms) == 0 {
		// Declared only once connected (see config).
		v.measurements(r.declared)
		ms = r.declared
	}
	v.points("stream", ms, r)
	_, resumer := src.(sdk.Resumer)
	switch {
	case resumer && r.pos == nil && r.err == nil:
		v.fail("stream", "a Resumer sent no position in %d points: call Emitter.Checkpoint", len(r.points))
	case !resumer && r.pos != nil:
		v.fail("stream", "the source checkpoints but is not an sdk.Resumer: its positions never come back; implement Resume")
	}
	if !resumer {
		return ms, nil, nil
	}
	return ms, r.pos, r.points[:r.covered]
}

// points checks what a run sent against the declared measurements.
func (v *verifier) points(check string, ms []sluice.Measurement, r run) {
	if r.invalid > 0 {
		v.fail(check, "%d points or events the host could not decode", r.invalid)
	}
	keys := map[string][]string{}
	for _, m := range ms {
		keys[m.Name] = m.Unique
	}
	reported := map[string]bool{} // one message per measurement and problem
	report := func(p sluice.Point, problem string) {
		if k := p.Measurement + "\x00" + problem; !reported[k] {
			reported[k] = true
			v.fail(check, "%s: %s", sdk.FormatPoint(p), problem)
		}
	}
	for _, p := range r.points {
		unique, declared := keys[p.Measurement]
		if !declared {
			report(p, "its measurement is not declared by Configure")
			continue
		}
		if len(p.Fields) == 0 {
			report(p, "a point needs a field")
		}
		if p.Time.IsZero() {
			report(p, "a point needs a time")
		}
		for _, k := range unique {
			if _, ok := keyValue(p, k); !ok {
				report(p, fmt.Sprintf("lacks %q of its uniqueness key %v", k, unique))
			}
		}
	}
	for _, ev := range r.events {
		if string(ev.Kind) == "unspecified" || strings.HasPrefix(string(ev.Kind), "kind_") || ev.Kind == "" {
			v.fail(check, "event %+v: its kind is not one the protocol has (sdk.EventX)", ev)
		}
	}
}

// keyValue is the value of uniqueness key column k in p: a tag, a field,
// or the point's time.
func keyValue(p sluice.Point, k string) (string, bool) {
	for _, t := range p.Tags {
		if t.Key == k {
			return "t" + t.Value, true
		}
	}
	for _, f := range p.Fields {
		if f.Key == k {
			return "f" + f.Value.String(), true
		}
	}
	if k == "time" {
		return p.Time.String(), true
	}
	return "", false
}

// identity is p's measurement and uniqueness key values; ok is false for
// a measurement without a key.
func identity(p sluice.Point, keys map[string][]string) (string, bool) {
	unique := keys[p.Measurement]
	if len(unique) == 0 {
		return "", false
	}
	id := p.Measurement
	for _, k := range unique {
		val, _ := keyValue(p, k)
		id += "\x00" + val
	}
	return id, true
}

func (v *verifier) resume(ms []sluice.Measurement, pos sluice.Position, covered []sluice.Point) {
	r, _ := v.streamRun("resume", pos)
	if r.err != nil {
		v.fail("resume", "resumed from %x: %v", []byte(pos), r.err)
		return
	}
	v.points("resume", ms, r)
	keys := map[string][]string{}
	for _, m := range ms {
		keys[m.Name] = m.Unique
	}
	before := map[string]bool{}
	for _, p := range covered {
		if id, ok := identity(p, keys); ok {
			before[id] = true
		}
	}
	for _, p := range r.points {
		if id, ok := identity(p, keys); ok && before[id] {
			v.fail("resume", "resumed from %x, the source sent again %s, which that position covers", []byte(pos), sdk.FormatPoint(p))
			return
		}
	}
}

func (v *verifier) sample(ms []sluice.Measurement) {
	src := v.newSource()
	if _, ok := src.(sdk.Sampler); !ok {
		if len(v.c.Samples) > 0 {
			v.fail("sample", "Samples given, but the source is not an sdk.Sampler")
		}
		return
	}
	p := Serve(v.t, src)
	defer v.stop("sample", p)
	ctx, cancel := v.ctx()
	defer cancel()
	received := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	results, err := p.Sample(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: json.RawMessage(v.c.Config)}, v.c.Samples, received)
	if err != nil {
		v.fail("sample", "%v", err)
		return
	}
	if len(results) != len(v.c.Samples) {
		v.fail("sample", "%d results for %d messages", len(results), len(v.c.Samples))
		return
	}
	var r run
	for i, res := range results {
		if len(res.Errors) > 0 {
			v.fail("sample", "message %d: %v", i, res.Errors)
		}
		r.points = append(r.points, res.Points...)
	}
	if len(v.c.Samples) > 0 && len(r.points) == 0 {
		v.fail("sample", "the samples made no point")
	}
	v.points("sample", ms, r)
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(v.c.Config), &obj) == nil && obj != nil {
		obj["sdktest_unknown_key"] = json.RawMessage("true")
		bad, _ := json.Marshal(obj)
		_, err := p.Sample(ctx, sdk.ConfigureRequest{Feed: "sdktest", Config: bad}, v.c.Samples, received)
		if !errors.As(err, new(sdk.ConfigErrors)) {
			v.fail("sample", "a config with an unknown key: got %v, want ConfigErrors", err)
		}
	}
}
