package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// Source is what a plugin author implements.
//
// Lifecycle: the host calls Info at any time, then Configure (possibly
// several times with ValidateOnly set, and once for real), then Run once.
// While Run runs, the host may validate new configs with Configure
// (ValidateOnly set) and, if the source is a Reconfigurer, apply them
// with Reconfigure; a source that is not needs a restart for every
// change.
type Source interface {
	Info() Info
	// Configure checks and applies the feed's config. Problems are
	// returned as ConfigErrors naming the key within the feed's `config:`.
	// It returns the measurements the source will emit.
	Configure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error)
	// Run emits points until ctx is done or the source fails. resume is
	// the last position the host stored for this feed (nil on a first
	// start). Returning nil before ctx is done means the source finished.
	Run(ctx context.Context, resume sluice.Position, out *Emitter) error
}

// Reconfigurer is a Source that can take a new config while it runs.
//
// The SDK calls Reconfigure, instead of Configure, for a config the host
// sends (not ValidateOnly) while Run runs; Configure stays the call for
// validation and for the config before Run. Reconfigure may be called
// concurrently with Run but never with itself.
type Reconfigurer interface {
	// Reconfigure applies req to the running source and returns the
	// measurements it emits from now on. Returning ErrRestartNeeded
	// (possibly wrapped, to say why) or ConfigErrors leaves the running
	// config in place: nothing of req is applied. Any other error is
	// treated as ErrRestartNeeded.
	Reconfigure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error)
}

// ErrRestartNeeded says that a config cannot be applied to the running
// source: the host should restart the plugin with it. Client.Configure
// returns it (wrapped with the plugin's reason) for a config sent while a
// stream runs to a source that cannot apply that change live.
var ErrRestartNeeded = errors.New("this change needs a restart")

// Info describes a plugin.
type Info struct {
	Name         string
	Version      string
	Capabilities []string
}

// Capabilities a source may declare in Info.
const (
	// CapResume: the source honours the resume position.
	CapResume = "resume"
	// CapUnique: the source declares uniqueness keys per measurement.
	CapUnique = "unique"
	// CapSample: run with `-sample FILE -feed-config CONFIG`, the plugin
	// binary prints the points its config makes of the sample messages in
	// FILE, offline (CONFIG holds the feed's config block as JSON).
	// `sluice validate -sample` uses it.
	CapSample = "sample"
	// CapReconfigure: the source is a Reconfigurer; a Configure sent
	// while it streams may be applied without a restart.
	CapReconfigure = "reconfigure"
	// CapEvents: the plugin sends its events (Emitter.Event) as
	// source.v1 events, and the host writes the feed_events points. The
	// SDK declares it for every source; a plugin built before it sends
	// feed_events points itself, which the host then counts.
	CapEvents = "events"
)

// ConfigureRequest carries a feed's config to the plugin.
type ConfigureRequest struct {
	Feed         string
	Config       json.RawMessage
	ValidateOnly bool
}

// Decode unmarshals the config into v, rejecting unknown keys. Decoding
// problems come back as ConfigErrors.
func (r ConfigureRequest) Decode(v any) error {
	raw := r.Config
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ConfigErrors{decodeError(err)}
	}
	return nil
}

func decodeError(err error) ConfigError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return ConfigError{Key: typeErr.Field, Msg: fmt.Sprintf("must be %s, got %s", typeErr.Type, typeErr.Value)}
	}
	msg := err.Error()
	if k, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return ConfigError{Key: strings.Trim(k, `"`), Msg: "unknown key"}
	}
	return ConfigError{Msg: msg}
}

// PermanentError is a failure that restarting the plugin cannot fix (the
// server refused the credentials, closed with a policy violation). The
// host puts the feed in a failed state, shown in status, and does not
// restart it until its config changes.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent; Run returns it to stop the feed for good.
func Permanent(err error) error { return &PermanentError{Err: err} }

// ConfigError is one problem in a feed's config, at Key (a dotted path
// inside `config:`; empty for the config as a whole).
type ConfigError struct {
	Key string
	Msg string
}

func (e ConfigError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// ConfigErrors is every problem found in a config at once.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Duration is a time.Duration that decodes from JSON as "1.5s" or as a
// number of nanoseconds, for use in plugin config structs.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(n)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
