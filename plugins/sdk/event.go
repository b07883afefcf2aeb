package sdk

import (
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// EventKind says what happened to a feed. Its value is the kind tag of
// the feed_events point the agent writes for the event; on the wire it is
// the source.v1 EventKind of the same name.
type EventKind string

// Event kinds. The agent counts reconnects, gaps and backfilled points
// from them, and keeps a stream stale from EventStale until EventLive.
const (
	EventConnect         EventKind = "connect"          // the first connection is up
	EventReconnect       EventKind = "reconnect"        // a connection is up again after one ended
	EventDisconnect      EventKind = "disconnect"       // a connection ended (Message: why)
	EventGap             EventKind = "gap"              // missing ids seen (FromID..ToID, Count)
	EventBackfill        EventKind = "backfill"         // missing ids fetched and emitted (Count: how many)
	EventGapLost         EventKind = "gap_lost"         // missing ids given up
	EventQueueDrop       EventKind = "queue_drop"       // ids the full point queue dropped, to be backfilled
	EventResync          EventKind = "resync"           // a sequence break; the state is rebuilt
	EventStale           EventKind = "stale"            // Stream (or the feed) has had no data since Since
	EventLive            EventKind = "live"             // a stale Stream has data again
	EventRotate          EventKind = "rotate"           // a connection replaced without a gap
	EventServerShutdown  EventKind = "server_shutdown"  // the server announced it will close a connection
	EventServerError     EventKind = "server_error"     // the server answered an error
	EventReconfigure     EventKind = "reconfigure"      // a new config applied to the running feed
	EventFailed          EventKind = "failed"           // a permanent failure: the source stops
	EventBudgetExhausted EventKind = "budget_exhausted" // too many reconnects: the source stops
)

// Event is something that happened to a feed that is not data: a gap, a
// backfill, a reconnect, a stream gone stale. A source reports it with
// Emitter.Event; the agent counts it in its status and metrics and writes
// it as a feed_events point (see EventPoint).
type Event struct {
	Kind EventKind
	// Time is when it happened; zero means when Emitter.Event was called.
	Time time.Time
	// Symbol and Stream name the instrument and the stream it concerns,
	// if one. A stale feed with no streams of its own leaves Stream
	// empty: the feed as a whole is stale.
	Symbol string
	Stream string
	// Message says what happened and why, for people.
	Message string
	// Count is how many (ids in a gap, points backfilled); FromID and
	// ToID the ids concerned. Zero when they do not apply.
	Count  int64
	FromID int64
	ToID   int64
	// Since is, for EventStale, when the stream last had data (or was
	// subscribed); zero means Time.
	Since time.Time
}

// Discard is a count of messages a plugin discarded for one reason
// before they became points (a frame too large, a message not JSON).
type Discard struct {
	Reason string
	Count  uint64
}

// MeasFeedEvents is the measurement the agent writes events to, one
// point per event: tags feed, kind and, for an event about one symbol,
// symbol; fields message always, stream, count, from_id and to_id where
// set. It has no uniqueness key: every event is a new point.
const MeasFeedEvents = "feed_events"

// EventPoint is the feed_events point the agent writes for ev, an event
// of feed. Its schema is the one Grafana's dashboards read.
func EventPoint(feed string, ev Event) sluice.Point {
	tags := make([]sluice.Tag, 0, 3)
	tags = append(tags, sluice.Tag{Key: "feed", Value: feed}, sluice.Tag{Key: "kind", Value: string(ev.Kind)})
	if ev.Symbol != "" {
		tags = append(tags, sluice.Tag{Key: "symbol", Value: ev.Symbol})
	}
	fields := make([]sluice.Field, 0, 5)
	fields = append(fields, sluice.Field{Key: "message", Value: sluice.String(ev.Message)})
	if ev.Stream != "" {
		fields = append(fields, sluice.Field{Key: "stream", Value: sluice.String(ev.Stream)})
	}
	if ev.Count > 0 {
		fields = append(fields, sluice.Field{Key: "count", Value: sluice.Int(ev.Count)})
	}
	if ev.FromID > 0 || ev.ToID > 0 {
		fields = append(fields,
			sluice.Field{Key: "from_id", Value: sluice.Int(ev.FromID)},
			sluice.Field{Key: "to_id", Value: sluice.Int(ev.ToID)})
	}
	return sluice.Point{Measurement: MeasFeedEvents, Tags: tags, Fields: fields, Time: ev.Time, Received: ev.Time}
}

// The wire enum and the kind names are one list: the proto's, with
// EVENT_KIND_ taken off and lower-cased.
var (
	kindToWire = map[EventKind]pb.EventKind{}
	wireToKind = map[pb.EventKind]EventKind{}
)

func init() {
	for v, name := range pb.EventKind_name {
		k := EventKind(strings.ToLower(strings.TrimPrefix(name, "EVENT_KIND_")))
		kindToWire[k] = pb.EventKind(v)
		wireToKind[pb.EventKind(v)] = k
	}
}

// wireKind is k's wire value; a kind the protocol does not have is sent
// as unspecified.
func wireKind(k EventKind) pb.EventKind { return kindToWire[k] }

// kindOf names a wire kind; one from a newer protocol is "kind_<n>".
func kindOf(v pb.EventKind) EventKind {
	if k, ok := wireToKind[v]; ok {
		return k
	}
	return EventKind("kind_" + strconv.Itoa(int(v)))
}
