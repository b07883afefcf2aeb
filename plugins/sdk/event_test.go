package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// A silent feed is the case that matters: its stale event must reach the
// host although no point flows to carry it.
func TestEventReachesHostWithoutPoints(t *testing.T) {
	since := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		out.Stale("btcusdt@trade", since)
		<-ctx.Done()
		return ctx.Err()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []Event
	var points int
	err := c.Stream(ctx, StreamOptions{FlushInterval: 10 * time.Millisecond}, func(b *Batch, _ int, _ error) error {
		points += len(b.Points)
		got = append(got, b.Events...)
		if len(got) > 0 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stream: %v", err)
	}
	if points != 0 || len(got) != 1 {
		t.Fatalf("got %d points and events %+v; want one event and no points", points, got)
	}
	ev := got[0]
	if ev.Kind != EventStale || ev.Stream != "btcusdt@trade" || !ev.Since.Equal(since) || ev.Time.IsZero() {
		t.Errorf("event = %+v", ev)
	}
}

// Events wait in a queue of their own: a full point queue drops points,
// never events, and the events keep their order.
func TestEventsSurviveAFullPointQueue(t *testing.T) {
	e := newEmitter(2)
	for i := range 10 {
		e.Emit(pointN(i))
		e.Event(Event{Kind: EventQueueDrop, Count: int64(i)})
	}
	e.Discarded("oversize", 3)
	var events []Event
	var points int
	var dropped, discarded uint64
	b := &batcher{e: e, size: 4, interval: time.Hour, send: func(b *outBatch) error {
		points += len(b.points)
		dropped += b.dropped
		events = append(events, b.events...)
		for _, d := range b.discarded {
			discarded += d.Count
		}
		return nil
	}}
	done := make(chan struct{})
	close(done)
	if err := b.run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	if points != 2 || dropped != 8 || discarded != 3 {
		t.Errorf("points %d, dropped %d, discarded %d; want 2, 8, 3", points, dropped, discarded)
	}
	if len(events) != 10 {
		t.Fatalf("%d events reached the host, want 10", len(events))
	}
	for i, ev := range events {
		if ev.Count != int64(i) || ev.Time.IsZero() {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
}

// Past its bound the queue coalesces instead of dropping: counts add up,
// stale and live keep their stream with the newest state, discard reasons
// past their bound go to "other".
func TestEventQueueCoalesces(t *testing.T) {
	var q eventQueue
	t0 := time.Unix(1700000000, 0)
	for range maxQueuedEvents {
		q.push(Event{Kind: EventResync, Time: t0, Message: "queued"})
	}
	for i := range 100 {
		q.push(Event{Kind: EventGap, Time: t0.Add(time.Duration(i)), Symbol: "BTCUSDT", Count: 2, FromID: int64(1000 - i), ToID: int64(2000 + i), Message: fmt.Sprint(i)})
	}
	q.push(Event{Kind: EventStale, Stream: "a", Since: t0.Add(time.Second)})
	q.push(Event{Kind: EventStale, Stream: "a", Since: t0.Add(2 * time.Second)})
	q.push(Event{Kind: EventStale, Stream: "b", Since: t0})
	q.push(Event{Kind: EventLive, Stream: "b"})
	for i := range maxDiscardReasons + 5 {
		q.discard(fmt.Sprintf("r%d", i), 1)
	}
	q.discard("r0", 4)

	events, discarded := q.take()
	if len(events) != maxQueuedEvents+3 {
		t.Fatalf("%d events, want %d queued and 3 coalesced", len(events), maxQueuedEvents)
	}
	gap, a, b := events[maxQueuedEvents], events[maxQueuedEvents+1], events[maxQueuedEvents+2]
	if gap.Kind != EventGap || gap.Count != 200 || gap.FromID != 901 || gap.ToID != 2099 || gap.Symbol != "BTCUSDT" ||
		!strings.HasPrefix(gap.Message, "100 gap events coalesced") || !strings.HasSuffix(gap.Message, ": 99") {
		t.Errorf("coalesced gap = %+v", gap)
	}
	if a.Kind != EventStale || a.Stream != "a" || !a.Since.Equal(t0.Add(time.Second)) {
		t.Errorf("stream a = %+v, want stale since its first report", a)
	}
	if b.Kind != EventLive || b.Stream != "b" {
		t.Errorf("stream b = %+v, want live", b)
	}
	if len(discarded) != maxDiscardReasons+1 || discarded[0] != (Discard{"r0", 5}) || discarded[maxDiscardReasons] != (Discard{"other", 5}) {
		t.Errorf("discarded = %v", discarded)
	}
	if ev, d := q.take(); ev != nil || d != nil {
		t.Errorf("after take: %v %v", ev, d)
	}
	q.push(Event{Kind: EventGap})
	if ev, _ := q.take(); len(ev) != 1 {
		t.Errorf("the queue is not reusable: %v", ev)
	}
}

// A host from before events asks for no events: it gets them as the
// feed_events points plugins used to send, named with the configured
// feed.
func TestHostWithoutEventsGetsFeedEventsPoints(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: PluginFor(&scripted{
		run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
			out.Event(Event{Kind: EventGap, Symbol: "BTCUSDT", Stream: "trade", Count: 3, FromID: 5, ToID: 7, Message: "hole"})
			out.Discarded("too_deep", 1)
			return out.EmitWait(ctx, pointN(1))
		},
	})})
	t.Cleanup(func() { client.Close() })
	rpc := pb.NewSourceClient(client.Conn)
	if _, err := rpc.Configure(context.Background(), &pb.ConfigureRequest{Feed: "old-host-feed", ConfigJson: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	st, err := rpc.Stream(context.Background(), &pb.StreamRequest{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []sluice.Point
	for {
		b, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b.GetEvents()) > 0 || len(b.GetDiscarded()) > 0 {
			t.Fatalf("a host that does not write events got %v %v", b.GetEvents(), b.GetDiscarded())
		}
		got = append(got, pbPoints(t, b)...)
	}
	if len(got) != 2 {
		t.Fatalf("got %d points, want the data point and the event's", len(got))
	}
	ev := got[0]
	if ev.Measurement == "m" {
		ev = got[1]
	}
	want := EventPoint("old-host-feed", Event{Kind: EventGap, Symbol: "BTCUSDT", Stream: "trade", Count: 3, FromID: 5, ToID: 7, Message: "hole", Time: ev.Time})
	if !ev.Equal(&want) || ev.Time.IsZero() {
		t.Fatalf("event point = %+v\nwant %+v", ev, want)
	}
}

// Discard counts reach the host, by reason.
func TestDiscardedReachesHost(t *testing.T) {
	c := connect(t, &scripted{run: func(ctx context.Context, _ sluice.Position, out Emitter) error {
		out.Discarded("too_deep", 2)
		out.Discarded("oversize", 1)
		out.Discarded("ignored", 0)
		if err := out.EmitWait(ctx, pointN(1)); err != nil {
			return err
		}
		out.Discarded("too_deep", 5) // in this batch or a later one: the sum is the same

		return nil
	}})
	sum := map[string]uint64{}
	for _, b := range collect(t, c, StreamOptions{FlushInterval: 5 * time.Millisecond}) {
		for _, d := range b.Discarded {
			sum[d.Reason] += d.Count
		}
	}
	if len(sum) != 2 || sum["too_deep"] != 7 || sum["oversize"] != 1 {
		t.Fatalf("discarded = %v", sum)
	}
}

// Every kind has a wire value of its own, named as the proto names it.
func TestEventKindsAreTheProtocols(t *testing.T) {
	kinds := []EventKind{EventConnect, EventReconnect, EventDisconnect, EventGap, EventBackfill, EventGapLost,
		EventQueueDrop, EventResync, EventStale, EventLive, EventRotate, EventServerShutdown, EventServerError,
		EventReconfigure, EventFailed, EventBudgetExhausted}
	seen := map[pb.EventKind]bool{}
	for _, k := range kinds {
		v := wireKind(k)
		if v == pb.EventKind_EVENT_KIND_UNSPECIFIED || seen[v] || kindOf(v) != k {
			t.Errorf("%s: wire %v", k, v)
		}
		seen[v] = true
	}
	if len(pb.EventKind_name) != len(kinds)+1 {
		t.Errorf("the proto has %d kinds, the SDK %d: add the constant", len(pb.EventKind_name)-1, len(kinds))
	}
	if kindOf(99) != "kind_99" || kindOf(0) != "unspecified" {
		t.Errorf("kindOf(99) = %q, kindOf(0) = %q", kindOf(99), kindOf(0))
	}
}

// What plugins built themselves before events, as they built it: the
// Binance plugin's feedEvent.point and the jsonws plugin's event point.
// EventPoint must give the same point for the same event, tags and fields
// in the same order, so that the rows the agent writes are the rows the
// dashboards read.
type binanceFeedEvent struct {
	kind, symbol, stream, message string
	count, fromID, toID           int64
}

func (e *binanceFeedEvent) point(feed string, now time.Time) sluice.Point {
	tags := make([]sluice.Tag, 0, 3)
	tags = append(tags, sluice.Tag{Key: "feed", Value: feed}, sluice.Tag{Key: "kind", Value: e.kind})
	if e.symbol != "" {
		tags = append(tags, sluice.Tag{Key: "symbol", Value: e.symbol})
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
	return sluice.Point{Measurement: "feed_events", Tags: tags, Fields: fields, Time: now, Received: now}
}

func jsonwsEventPoint(feed, kind, msg string, now time.Time) sluice.Point {
	return sluice.Point{
		Measurement: "feed_events",
		Tags:        []sluice.Tag{{Key: "feed", Value: feed}, {Key: "kind", Value: kind}},
		Fields:      []sluice.Field{{Key: "message", Value: sluice.String(msg)}},
		Time:        now,
		Received:    now,
	}
}

func TestEventPointIsWhatPluginsWrote(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 7, time.UTC)
	for _, e := range []binanceFeedEvent{
		{kind: "gap", symbol: "BTCUSDT", stream: "trade", count: 3, fromID: 10, toID: 12, message: "missing"},
		{kind: "backfill", symbol: "BTCUSDT", stream: "aggTrade", count: 3, fromID: 10, toID: 12},
		{kind: "resync", symbol: "ETHUSDT", stream: "depth", message: "sequence break"},
		{kind: "stale", symbol: "ETHUSDT", stream: "kline_1m", message: "silent"},
		{kind: "disconnect", message: "closed: 1006"},
		{kind: "reconfigure"},
		{kind: "queue_drop", symbol: "X", count: 1, toID: 5},
	} {
		got := EventPoint("spot", Event{Kind: EventKind(e.kind), Time: now, Symbol: e.symbol, Stream: e.stream,
			Message: e.message, Count: e.count, FromID: e.fromID, ToID: e.toID})
		if want := e.point("spot", now); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v:\n got %+v\nwant %+v", e, got, want)
		}
	}
	for _, kind := range []EventKind{EventConnect, EventReconnect, EventDisconnect, EventStale, EventFailed, EventBudgetExhausted} {
		got := EventPoint("ws", Event{Kind: kind, Time: now, Message: "why"})
		if want := jsonwsEventPoint("ws", string(kind), "why", now); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", kind, got, want)
		}
	}
}
