// Command eventsource is a test plugin that reports a fixed script of
// feed events among a few data points, built two ways:
//
//   - as is, with the SDK: it reports the events as source.v1 events
//     (Emitter.Event), and the agent writes the feed_events points;
//   - with -ldflags "-X main.mode=legacy": as a plugin built before
//     events did, without the SDK's server: Describe without the "events"
//     capability, feed_events declared and sent as points of its own,
//     built by the code the Binance plugin used (feedEvent.point below,
//     as it was).
//
// The agent's tests run both and compare what lands.
package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
	"github.com/sluicehq/sluice/plugins/sdk"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// mode is "legacy" for the build that stands for an old plugin.
var mode string

// base is the time of the first event; each next is a millisecond later.
var base = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// script is the events both builds report, in order.
func script() []sdk.Event {
	evs := []sdk.Event{
		{Kind: sdk.EventConnect, Message: "connected"},
		{Kind: sdk.EventGap, Symbol: "BTCUSDT", Stream: "trade", Count: 3, FromID: 10, ToID: 12, Message: "missing trade ids"},
		{Kind: sdk.EventBackfill, Symbol: "BTCUSDT", Stream: "trade", Count: 3, FromID: 10, ToID: 12, Message: "backfilled 3 of 3 missing ids over REST"},
		{Kind: sdk.EventGapLost, Symbol: "ETHUSDT", Stream: "aggTrade", Count: 2, FromID: 5, ToID: 6, Message: "gone from Binance's history"},
		{Kind: sdk.EventQueueDrop, Symbol: "ETHUSDT", Stream: "trade", Count: 7, FromID: 100, ToID: 106, Message: "the host's queue was full"},
		{Kind: sdk.EventResync, Symbol: "ETHUSDT", Stream: "depth", Message: "sequence break: é \"quoted\""},
		{Kind: sdk.EventDisconnect, Message: "server closed the connection: 1006"},
		{Kind: sdk.EventReconnect, Message: "connected"},
		{Kind: sdk.EventStale, Symbol: "BTCUSDT", Stream: "trade", Message: "btcusdt@trade silent for 5m0s"},
		{Kind: sdk.EventLive, Symbol: "BTCUSDT", Stream: "trade", Message: "data again"},
		{Kind: sdk.EventServerError, Message: ""},
		{Kind: sdk.EventRotate, Message: "connection 2 replaced connection 1"},
	}
	for i := range evs {
		evs[i].Time = base.Add(time.Duration(i) * time.Millisecond)
	}
	return evs
}

// ticks are the data points both builds send.
func ticks() []sluice.Point {
	var ps []sluice.Point
	for i := range 5 {
		t := base.Add(time.Duration(i) * time.Second)
		ps = append(ps, sluice.Point{Measurement: "ticks", Fields: []sluice.Field{{Key: "seq", Value: sluice.Int(int64(i))}}, Time: t, Received: t})
	}
	return ps
}

var measurements = []sluice.Measurement{{Name: "ticks", Unique: []string{"seq"}}}

func main() {
	if mode == "legacy" {
		serveLegacy()
		return
	}
	sdk.Serve(&source{})
}

// source is the build with the SDK.
type source struct{}

func (*source) Info() sdk.Info { return sdk.Info{Name: "eventsource", Version: "2"} }

func (*source) Configure(context.Context, sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	return measurements, nil
}

func (*source) Run(ctx context.Context, out sdk.Emitter) error {
	for _, p := range ticks() {
		if err := out.EmitWait(ctx, p); err != nil {
			return err
		}
	}
	for _, ev := range script() {
		out.Event(ev)
	}
	<-ctx.Done()
	return ctx.Err()
}

// serveLegacy serves source.v1 as a plugin from before events: no SDK
// server, no "events" capability.
func serveLegacy() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: sdk.Handshake,
		Plugins:         plugin.PluginSet{sdk.PluginName: legacyPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.NewNullLogger(),
	})
}

type legacyPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (legacyPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSourceServer(s, &legacyServer{})
	return nil
}

func (legacyPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

type legacyServer struct {
	pb.UnimplementedSourceServer
	feed string
}

func (*legacyServer) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Name: "eventsource", Version: "1", Capabilities: []string{"unique"}}, nil
}

func (s *legacyServer) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if !req.GetValidateOnly() {
		s.feed = req.GetFeed()
	}
	resp := &pb.ConfigureResponse{}
	for _, m := range measurements {
		resp.Measurements = append(resp.Measurements, &pb.Measurement{Name: m.Name, Unique: m.Unique})
	}
	resp.Measurements = append(resp.Measurements, &pb.Measurement{Name: "feed_events"})
	return resp, nil
}

func (s *legacyServer) Stream(_ *pb.StreamRequest, st grpc.ServerStreamingServer[pb.Batch]) error {
	points := ticks()
	for _, ev := range script() {
		fe := feedEvent{kind: string(ev.Kind), symbol: ev.Symbol, stream: ev.Stream, message: ev.Message,
			count: ev.Count, fromID: ev.FromID, toID: ev.ToID}
		points = append(points, fe.point(s.feed, ev.Time))
	}
	raw, err := pointcodec.AppendPoints(nil, points)
	if err != nil {
		return err
	}
	var b pb.Batch
	if err := proto.Unmarshal(raw, &b); err != nil {
		return err
	}
	if err := st.Send(&b); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

// feedEvent and its point are the Binance plugin's, as they were before
// events: how plugins built feed_events points themselves.
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
