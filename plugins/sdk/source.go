package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sluicehq/sluice"
)

// Source is what a plugin author implements; Serve runs it.
//
// Lifecycle: the host calls Info at any time, then Configure (possibly
// several times with ValidateOnly set, and once for real), then, if the
// host has a position for the feed and the source is a Resumer, Resume,
// then Run once. While Run runs, the host may validate new configs with
// Configure (ValidateOnly set) and, if the source is a Reconfigurer,
// apply them with Reconfigure; a source that is not needs a restart for
// every change.
//
// What else a source can do it says by implementing the optional
// interfaces beside it (Resumer, Reconfigurer, Sampler); the SDK derives
// the capabilities it declares to the host from them (see Capabilities).
type Source interface {
	// Info names the plugin and its version. Capabilities are derived,
	// never declared: leave Info.Capabilities empty.
	Info() Info
	// Configure checks and applies the feed's config. Problems are
	// returned as ConfigErrors naming the key within the feed's
	// `config:`, every one at once (ConfigureRequest.Check collects
	// them). It returns the measurements the source will emit. With
	// ValidateOnly it changes nothing.
	Configure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error)
	// Run emits points until ctx is done or the source fails. Returning
	// nil before ctx is done means the source finished. Return
	// Permanent(err) for a failure a restart cannot fix.
	Run(ctx context.Context, out Emitter) error
}

// Resumer is a Source that resumes where it stopped: it records
// positions with Emitter.Checkpoint, and the host, which stores the last
// one with the data it covers, hands it back to the next process through
// Resume before Run. A source that checkpoints must be a Resumer, or its
// positions never come back.
type Resumer interface {
	// Resume sets where the coming Run starts: after the points pos
	// covers. pos is a position this source checkpointed (perhaps in an
	// older version of the plugin); it is never empty, and Resume is not
	// called on a first start. An error fails the stream, as an error
	// from Run does.
	Resume(pos sluice.Position) error
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

// Sampler is a Source that can show what a config makes of sample
// messages, offline, so that a user can develop a mapping without a
// connection: `sluice validate -config F -sample MSGS` calls it.
type Sampler interface {
	// Sample maps each message with req's config (ValidateOnly is set:
	// nothing may connect or start), as if received at received, and
	// returns one result per message, in order. Problems in the config
	// are returned as ConfigErrors, as Configure returns them.
	Sample(ctx context.Context, req ConfigureRequest, messages [][]byte, received time.Time) ([]SampleResult, error)
}

// SampleResult is what a source made of one sample message.
type SampleResult struct {
	Points []sluice.Point
	// Errors say what went wrong mapping the message (a path missing, a
	// wrong type), for people.
	Errors []string
	// Unmatched: nothing in the config applies to the message.
	Unmatched bool
	// Note says, for people, what the source made of a message that gave
	// no point ("heartbeat"); empty for an unmatched one.
	Note string
}

// ErrRestartNeeded says that a config cannot be applied to the running
// source: the host should restart the plugin with it. Client.Configure
// returns it (wrapped with the plugin's reason) for a config sent while a
// stream runs to a source that cannot apply that change live.
var ErrRestartNeeded = errors.New("this change needs a restart")

// Info describes a plugin.
type Info struct {
	Name    string
	Version string
	// Capabilities are what the plugin declares in Describe: on the
	// host's side (Client.Describe), the plugin's; on the plugin's side,
	// derived by the SDK (see Capabilities), so a Source leaves them
	// empty and what it sets is ignored.
	Capabilities []string
}

// Capabilities a plugin declares, by the names the protocol uses.
const (
	// CapResume: the source is a Resumer.
	CapResume = "resume"
	// CapUnique: the plugin declares uniqueness keys with its
	// measurements (Measurement.Unique). The SDK declares it for every
	// source: keys are part of what Configure returns.
	CapUnique = "unique"
	// CapSample: the source is a Sampler; the plugin serves Sample.
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

// Capabilities is what a plugin serving src declares: what the SDK does
// for every source (unique, events) and what src implements (resume for
// a Resumer, sample for a Sampler, reconfigure for a Reconfigurer).
func Capabilities(src Source) []string {
	var caps []string
	if _, ok := src.(Resumer); ok {
		caps = append(caps, CapResume)
	}
	caps = append(caps, CapUnique)
	if _, ok := src.(Sampler); ok {
		caps = append(caps, CapSample)
	}
	if _, ok := src.(Reconfigurer); ok {
		caps = append(caps, CapReconfigure)
	}
	return append(caps, CapEvents)
}

// ConfigureRequest carries a feed's config to the plugin.
type ConfigureRequest struct {
	Feed         string
	Config       json.RawMessage
	ValidateOnly bool
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
