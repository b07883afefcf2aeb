package binance

import (
	"github.com/sluicehq/sluice/plugins/sdk"
)

// MeasFeedEvents is where the agent writes what this plugin reports as
// events (gaps, backfills, resyncs, disconnects), one point each, so that
// a dashboard marks them on its graphs. The schema is sdk.EventPoint's:
// tags feed, kind and, for an event about one symbol, symbol; fields
// message always, stream (the stream kind), count, from_id and to_id
// where they apply.
const MeasFeedEvents = sdk.MeasFeedEvents

// The kinds of event the plugin reports, as the kind tag of feed_events
// has them. The plugin reports sdk's kinds; these name them for the
// dashboards' tests and queries.
const (
	FeedGap            = string(sdk.EventGap)            // missing trade ids seen (from_id..to_id, count)
	FeedBackfill       = string(sdk.EventBackfill)       // ids fetched over REST and emitted (from_id..to_id, count)
	FeedGapLost        = string(sdk.EventGapLost)        // ids given up: past max_backfill or gone from Binance's history
	FeedQueueDrop      = string(sdk.EventQueueDrop)      // live ids the host's full queue dropped, to be backfilled (count, from_id..to_id)
	FeedResync         = string(sdk.EventResync)         // a depth sequence break; the symbol's book is rebuilt
	FeedDisconnect     = string(sdk.EventDisconnect)     // a connection ended (message: close code and reason)
	FeedReconnect      = string(sdk.EventReconnect)      // a connection was re-established after a disconnect
	FeedStale          = string(sdk.EventStale)          // a stream was silent past stale_after (its connection is replaced)
	FeedLive           = string(sdk.EventLive)           // a stale stream has data again
	FeedRotate         = string(sdk.EventRotate)         // a connection was replaced by a new one without a gap
	FeedServerShutdown = string(sdk.EventServerShutdown) // Binance announced it will close a connection
	FeedServerError    = string(sdk.EventServerError)    // Binance answered an error (request error frame, refused handshake, REST error)
	FeedReconfigure    = string(sdk.EventReconfigure)    // a new config was applied to the running feed (message: what changed)
)

// Tag keys of feed_events.
const (
	TagFeed = "feed"
	TagKind = "kind"
)
