package binance

import (
	"time"

	"github.com/sluicehq/sluice"
)

// MeasFeedEvents is the measurement of what happened to a feed: gaps,
// backfills, resyncs, disconnects. A dashboard marks them on its graphs.
// Tags: feed, kind and, for an event about one symbol, symbol. Fields:
// message always; stream, count, from_id and to_id where they apply.
// Every event is a new point: it has no uniqueness key.
const MeasFeedEvents = "feed_events"

var feedEventsMeasurement = sluice.Measurement{Name: MeasFeedEvents}

// Feed event kinds, the `kind` tag of feed_events.
const (
	FeedGap            = "gap"             // missing trade ids seen (from_id..to_id, count)
	FeedBackfill       = "backfill"        // ids fetched over REST and emitted (from_id..to_id, count)
	FeedGapLost        = "gap_lost"        // ids given up: past max_backfill or gone from Binance's history
	FeedQueueDrop      = "queue_drop"      // live ids the host's full queue dropped, to be backfilled (count, from_id..to_id)
	FeedResync         = "resync"          // a depth sequence break; the symbol's book is rebuilt
	FeedDisconnect     = "disconnect"      // a connection ended (message: close code and reason)
	FeedReconnect      = "reconnect"       // a connection was re-established after a disconnect
	FeedStale          = "stale"           // a stream was silent past stale_after; its connection is replaced
	FeedRotate         = "rotate"          // a connection was replaced by a new one without a gap
	FeedServerShutdown = "server_shutdown" // Binance announced it will close a connection
	FeedServerError    = "server_error"    // Binance answered an error (request error frame, refused handshake, REST error)
	FeedReconfigure    = "reconfigure"     // a new config was applied to the running feed (message: what changed)
)

// Tag keys of feed_events.
const (
	TagFeed = "feed"
	TagKind = "kind"
)

// feedEvent is one feed_events point before it is built.
type feedEvent struct {
	kind    string
	symbol  string // empty for an event about a connection
	stream  string // the stream kind ("trade"), if the event is about one
	message string
	count   int64
	fromID  int64 // with toID, set when count > 0 and the event is about ids
	toID    int64
}

func (e *feedEvent) point(feed string, now time.Time) sluice.Point {
	tags := make([]sluice.Tag, 0, 3)
	tags = append(tags, sluice.Tag{Key: TagFeed, Value: feed}, sluice.Tag{Key: TagKind, Value: e.kind})
	if e.symbol != "" {
		tags = append(tags, sluice.Tag{Key: TagSymbol, Value: e.symbol})
	}
	fields := make([]sluice.Field, 0, 5)
	fields = append(fields, sluice.Field{Key: "message", Value: sluice.String(e.message)})
	if e.stream != "" {
		fields = append(fields, sluice.Field{Key: "stream", Value: sluice.String(e.stream)})
	}
	if e.count > 0 {
		fields = append(fields, sluice.Field{Key: "count", Value: sluice.Int(e.count)})
	}
	if e.fromID > 0 || e.toID > 0 {
		fields = append(fields,
			sluice.Field{Key: "from_id", Value: sluice.Int(e.fromID)},
			sluice.Field{Key: "to_id", Value: sluice.Int(e.toID)})
	}
	return sluice.Point{Measurement: MeasFeedEvents, Tags: tags, Fields: fields, Time: now, Received: now}
}
