package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pointcodec"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// ProtocolVersion is the source protocol this SDK speaks. It moves with
// the proto package (source.v1 → 1).
const ProtocolVersion = 1

// Handshake is shared by host and plugin. The cookie only tells a user who
// runs a plugin binary by hand that it is not meant for that.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "SLUICE_PLUGIN",
	MagicCookieValue: "source-7f3c1e0a",
}

// PluginName is the name the source service is dispensed under.
const PluginName = "source"

// BinaryPrefix starts the file name of every source plugin binary.
const BinaryPrefix = "sluice-source-"

// Serve runs src as a plugin process. It returns only when the host is done
// with the plugin. A plugin's main is a call to Serve.
func Serve(src Source) {
	go exitWithParent(os.Getppid(), time.Second)
	p := &grpcPlugin{impl: src}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(MaxSampleBytes+1<<20))...)
		},
		Logger: hclog.NewNullLogger(), // plugins log through Logger (slog)
	})
	// The host's shutdown stops the server, not Run: let Run return (and
	// write its closing log lines) within the time go-plugin gives a
	// plugin before it kills it.
	p.WaitRuns(stopWait)
}

// stopWait bounds how long Serve waits for Run after the host's shutdown,
// inside the 2 seconds go-plugin gives a plugin.
const stopWait = 1500 * time.Millisecond

// MaxSampleBytes bounds one sample message. A plugin takes Sample
// requests this large, plus room for the config.
const MaxSampleBytes = 16 << 20

// PluginFor is the go-plugin definition that serves src: what Serve
// serves, and what a harness that runs a source in-process behind the
// real gRPC boundary serves (sdktest, with go-plugin's
// TestPluginGRPCConn).
func PluginFor(src Source) plugin.Plugin { return &grpcPlugin{impl: src} }

// exitWithParent ends the plugin process once the agent that started it
// is gone (killed with -9, say): the plugin is reparented, so its parent
// pid changes. Without this a plugin would outlive its agent and keep a
// WebSocket open for nobody.
func exitWithParent(ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			newLogger(os.Stderr).Warn("the agent is gone; plugin exiting", "agent_pid", ppid)
			os.Exit(1)
		}
	}
}

// Logger returns the logger a plugin should use: JSON on stderr, which the
// host parses and re-emits under the feed's name. Stdout is reserved for
// the go-plugin handshake.
func Logger() *slog.Logger { return newLogger(os.Stderr) }

// LogLevelEnv carries the host's log level into a plugin process. The
// host sets it when it launches the plugin; users do not.
const LogLevelEnv = "SLUICE_PLUGIN_LOG_LEVEL"

func newLogger(w io.Writer) *slog.Logger {
	var level slog.Level // info unless the host asks for another
	if err := level.UnmarshalText([]byte(os.Getenv(LogLevelEnv))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// grpcPlugin joins both halves of the adapter for go-plugin.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Source
	runs runCount
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterSourceServer(s, &server{impl: p.impl, runs: &p.runs})
	return nil
}

// WaitRuns waits at most timeout for every Run of the source to return,
// and reports whether they did. sdktest finds it by interface: a Run
// that outlives its stream is what it checks for.
func (p *grpcPlugin) WaitRuns(timeout time.Duration) bool { return p.runs.wait(timeout) }

// runCount counts the Runs in progress.
type runCount struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0
}

func (r *runCount) add() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.idle = make(chan struct{})
	}
	r.n++
}

func (r *runCount) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n--; r.n == 0 {
		close(r.idle)
	}
}

func (r *runCount) wait(timeout time.Duration) bool {
	r.mu.Lock()
	n, idle := r.n, r.idle
	r.mu.Unlock()
	if n == 0 {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{rpc: pb.NewSourceClient(c)}, nil
}

// server is the plugin half: it adapts gRPC calls onto a Source.
type server struct {
	pb.UnimplementedSourceServer
	impl Source
	runs *runCount

	mu        sync.Mutex
	streaming bool
	feed      string // from the last Configure that applied a config
	// configuring serialises the Configure calls that apply a config, so
	// that a Reconfigurer never sees two at once.
	configuring sync.Mutex
}

// Describe names the plugin, with the capabilities its source's type
// has: never a list kept by hand beside it.
func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	info := s.impl.Info()
	return &pb.DescribeResponse{Name: info.Name, Version: info.Version, Capabilities: Capabilities(s.impl)}, nil
}

// Sample maps sample messages for a Sampler; it starts nothing.
func (s *server) Sample(ctx context.Context, req *pb.SampleRequest) (*pb.SampleResponse, error) {
	sm, ok := s.impl.(Sampler)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this plugin cannot map sample messages")
	}
	creq := ConfigureRequest{Feed: req.GetFeed(), Config: json.RawMessage(req.GetConfigJson()), ValidateOnly: true}
	results, err := sm.Sample(ctx, creq, req.GetMessages(), pointcodec.FromUnixNano(req.GetReceivedUnixNano()))
	resp := &pb.SampleResponse{}
	if err != nil {
		resp.Errors = configureResponse(nil, err).GetErrors()
		if len(resp.Errors) == 0 { // restart-needed makes no sense here
			resp.Errors = []*pb.ConfigError{{Message: err.Error()}}
		}
		return resp, nil
	}
	if len(results) != len(req.GetMessages()) {
		return nil, status.Errorf(codes.Internal, "the plugin made %d results of %d messages", len(results), len(req.GetMessages()))
	}
	for _, r := range results {
		points := pointcodec.Append(nil, &pointcodec.Batch{Points: r.Points})
		resp.Results = append(resp.Results, &pb.SampleResult{Points: points, Errors: r.Errors, Unmatched: r.Unmatched, Note: r.Note})
	}
	return resp, nil
}

// Configure validates, configures before a stream, or, sent while a
// stream runs, reconfigures the running source: through Reconfigure if
// the source is a Reconfigurer, else answering restart_needed.
func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	creq := ConfigureRequest{
		Feed:         req.GetFeed(),
		Config:       json.RawMessage(req.GetConfigJson()),
		ValidateOnly: req.GetValidateOnly(),
	}
	if creq.ValidateOnly {
		ms, err := s.impl.Configure(ctx, creq)
		return configureResponse(ms, err), nil
	}
	s.configuring.Lock()
	defer s.configuring.Unlock()
	s.mu.Lock()
	live := s.streaming
	s.mu.Unlock()
	if !live {
		ms, err := s.impl.Configure(ctx, creq)
		if err == nil {
			s.mu.Lock()
			s.feed = creq.Feed
			s.mu.Unlock()
		}
		return configureResponse(ms, err), nil
	}
	rc, ok := s.impl.(Reconfigurer)
	if !ok {
		return &pb.ConfigureResponse{RestartNeeded: true, RestartReason: "the plugin cannot be reconfigured while it runs"}, nil
	}
	ms, err := rc.Reconfigure(ctx, creq)
	var ces ConfigErrors
	var ce ConfigError
	if err != nil && !errors.As(err, &ces) && !errors.As(err, &ce) && !errors.Is(err, ErrRestartNeeded) {
		// The running config is whatever the source kept: only a
		// restart is sure to apply the new one.
		err = fmt.Errorf("%w: %w", ErrRestartNeeded, err)
	}
	return configureResponse(ms, err), nil
}

// configureResponse encodes what Configure or Reconfigure returned.
func configureResponse(ms []sluice.Measurement, err error) *pb.ConfigureResponse {
	resp := &pb.ConfigureResponse{}
	if err != nil {
		var ces ConfigErrors
		var ce ConfigError
		switch {
		case errors.As(err, &ces):
		case errors.As(err, &ce):
			ces = ConfigErrors{ce}
		case errors.Is(err, ErrRestartNeeded):
			resp.RestartNeeded, resp.RestartReason = true, restartReason(err)
			return resp
		default:
			ces = ConfigErrors{{Msg: err.Error()}}
		}
		for _, e := range ces {
			resp.Errors = append(resp.Errors, &pb.ConfigError{Key: e.Key, Message: e.Msg})
		}
		return resp
	}
	for _, m := range ms {
		resp.Measurements = append(resp.Measurements, &pb.Measurement{Name: m.Name, Unique: m.Unique})
	}
	return resp
}

// restartReason is err's message without the ErrRestartNeeded text that
// the host adds back.
func restartReason(err error) string {
	msg := err.Error()
	if msg == ErrRestartNeeded.Error() {
		return ""
	}
	if r, ok := strings.CutPrefix(msg, ErrRestartNeeded.Error()+": "); ok {
		return r
	}
	return msg
}

func (s *server) Stream(req *pb.StreamRequest, stream grpc.ServerStreamingServer[pb.Batch]) error {
	s.mu.Lock()
	if s.streaming {
		s.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "a stream is already running in this plugin process")
	}
	s.streaming = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.streaming = false
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	send := func(b *outBatch) error { return sendWire(stream, b) }
	if !hostWantsWire(stream.Context()) {
		send = func(b *outBatch) error { return sendProto(stream, b) }
	}
	em := newEmitter(int(req.GetQueueSize()))
	b := &batcher{
		e:        em,
		size:     int(req.GetBatchSize()),
		interval: time.Duration(req.GetFlushIntervalNs()),
		send:     send,
	}
	if !req.GetHostWritesEvents() {
		// A host from before events: it knows only points.
		s.mu.Lock()
		b.legacyFeed = s.feed
		s.mu.Unlock()
		if b.legacyFeed == "" {
			b.legacyFeed = s.impl.Info().Name
		}
	}
	if b.size <= 0 {
		b.size = DefaultBatchSize
	}
	if b.interval <= 0 {
		b.interval = DefaultFlushInterval
	}

	if r, ok := s.impl.(Resumer); ok && len(req.GetPosition()) > 0 {
		if err := r.Resume(sluice.Position(req.GetPosition())); err != nil {
			return status.Error(codes.Unknown, "resume: "+err.Error())
		}
	}
	runDone := make(chan struct{})
	var runErr error
	s.runs.add()
	go func() {
		defer s.runs.done()
		defer close(runDone)
		runErr = s.impl.Run(ctx, em)
	}()

	sendErr := b.run(ctx, runDone)
	cancel()
	<-runDone
	var perm *PermanentError
	switch {
	case errors.As(runErr, &perm):
		return status.Error(codes.FailedPrecondition, runErr.Error())
	case runErr != nil && !errors.Is(runErr, context.Canceled):
		return status.Error(codes.Unknown, runErr.Error())
	case sendErr != nil && !errors.Is(sendErr, context.Canceled):
		return sendErr
	}
	return nil
}

// Client is the host half: a plain Go view of a running source plugin.
type Client struct {
	rpc pb.SourceClient
}

// NewClient wraps a gRPC connection to a source plugin.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: pb.NewSourceClient(conn)}
}

// Describe asks the plugin who it is.
func (c *Client) Describe(ctx context.Context) (Info, error) {
	r, err := c.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("describe: %w", err)
	}
	return Info{Name: r.GetName(), Version: r.GetVersion(), Capabilities: r.GetCapabilities()}, nil
}

// Configure sends a feed's config. Problems in the config come back as
// ConfigErrors; any other error is a failure to talk to the plugin.
//
// Sent (not ValidateOnly) while a Stream runs, it reconfigures the running
// source. It returns the new measurements when the plugin applied the
// config live; ConfigErrors when it rejected it (the stream goes on with
// the old config); and an error matching ErrRestartNeeded when the plugin
// cannot apply it live (the stream goes on with the old config; restart
// the plugin to apply it).
func (c *Client) Configure(ctx context.Context, req ConfigureRequest) ([]sluice.Measurement, error) {
	r, err := c.rpc.Configure(ctx, &pb.ConfigureRequest{
		Feed: req.Feed, ConfigJson: req.Config, ValidateOnly: req.ValidateOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	if r.GetRestartNeeded() {
		if why := r.GetRestartReason(); why != "" {
			return nil, fmt.Errorf("%w: %s", ErrRestartNeeded, why)
		}
		return nil, ErrRestartNeeded
	}
	if len(r.GetErrors()) > 0 {
		return nil, configErrors(r.GetErrors())
	}
	ms := make([]sluice.Measurement, len(r.GetMeasurements()))
	for i, m := range r.GetMeasurements() {
		ms[i] = sluice.Measurement{Name: m.GetName(), Unique: m.GetUnique()}
	}
	return ms, nil
}

// Sample asks a plugin with CapSample what req's config makes of each
// message, offline. Problems in the config come back as ConfigErrors; a
// plugin without the capability answers with an error. Messages go over
// calls of about a MiB each (so that answers stay well inside the host's
// message bound); one message may be up to MaxSampleBytes.
func (c *Client) Sample(ctx context.Context, req ConfigureRequest, messages [][]byte, received time.Time) ([]SampleResult, error) {
	const perCall = 1 << 20
	var out []SampleResult
	for len(messages) > 0 || out == nil {
		n, size := 0, 0
		for n < len(messages) && (n == 0 || size+len(messages[n])+8 <= perCall) {
			size += len(messages[n]) + 8 // and its framing
			n++
		}
		if n == 1 && len(messages[0]) > MaxSampleBytes {
			return nil, fmt.Errorf("sample: a message of %d bytes is larger than the %d a plugin takes", len(messages[0]), MaxSampleBytes)
		}
		r, err := c.rpc.Sample(ctx, &pb.SampleRequest{
			Feed: req.Feed, ConfigJson: req.Config, Messages: messages[:n], ReceivedUnixNano: pointcodec.UnixNano(received),
		})
		if err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		if len(r.GetErrors()) > 0 {
			return nil, configErrors(r.GetErrors())
		}
		if len(r.GetResults()) != n {
			return nil, fmt.Errorf("sample: the plugin answered %d results for %d messages", len(r.GetResults()), n)
		}
		if out == nil {
			out = make([]SampleResult, 0, len(messages))
		}
		for _, res := range r.GetResults() {
			b, invalid, invErr, err := pointcodec.Decode(res.GetPoints())
			if err == nil && invalid > 0 {
				err = invErr
			}
			if err != nil {
				return nil, fmt.Errorf("sample: the plugin sent points the agent cannot read: %w", err)
			}
			out = append(out, SampleResult{Points: b.Points, Errors: res.GetErrors(), Unmatched: res.GetUnmatched(), Note: res.GetNote()})
		}
		messages = messages[n:]
	}
	return out, nil
}

func configErrors(in []*pb.ConfigError) ConfigErrors {
	ces := make(ConfigErrors, len(in))
	for i, e := range in {
		ces[i] = ConfigError{Key: e.GetKey(), Msg: e.GetMessage()}
	}
	return ces
}

// ErrMessageTooLarge ends a stream whose plugin sent a message (a batch)
// larger than the host takes (grpc.MaxCallRecvMsgSize on the host's
// connection). The host never reads such a message into memory.
var ErrMessageTooLarge = errors.New("the plugin sent a message larger than the agent takes")

// StreamOptions are the host's settings for one stream.
type StreamOptions struct {
	Resume        sluice.Position
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
}

// Batch is one batch as the host receives it: points, drop count and
// position, and what the plugin reported besides its points.
type Batch struct {
	sluice.Batch
	// Events are what happened to the feed since the previous batch, in
	// order. Always empty from a plugin without CapEvents, which sends
	// them as feed_events points instead.
	Events []Event
	// Discarded counts, by reason, the messages the plugin discarded
	// since the previous batch before they became points.
	Discarded []Discard
	// RawPoints, when not nil, are Points as the plugin encoded them, in
	// the encoding of the agent's disk buffer (internal/pointcodec): a
	// host that keeps every point as it came can store these bytes
	// instead of encoding the points again. Nil when the plugin's bytes
	// held anything that could not stand for the points alone.
	RawPoints []byte
}

// BatchHandler receives each batch with the number of points (and
// events) in it that could not be decoded (already left out of the
// batch) and the first such error. Returning an error ends the stream.
type BatchHandler func(b *Batch, invalid int, invalidErr error) error

// Stream runs the feed, calling fn for each batch in order, until ctx is
// done (returns ctx.Err()), the plugin ends its stream (nil), or fails.
func (c *Client) Stream(ctx context.Context, opts StreamOptions, fn BatchHandler) error {
	st, err := c.rpc.Stream(ctx, &pb.StreamRequest{
		Position:         opts.Resume,
		QueueSize:        uint32(max(opts.QueueSize, 0)),
		BatchSize:        uint32(max(opts.BatchSize, 0)),
		FlushIntervalNs:  int64(opts.FlushInterval),
		HostWritesEvents: true,
	}, grpc.CallContentSubtype(wireCodecName))
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	for {
		b, invalid, invErr, err := recvWire(st)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s, ok := status.FromError(err); ok {
				switch s.Code() {
				case codes.Unknown:
					return fmt.Errorf("source failed: %s", s.Message())
				case codes.FailedPrecondition:
					return Permanent(errors.New(s.Message()))
				case codes.ResourceExhausted:
					return fmt.Errorf("%w: %s", ErrMessageTooLarge, s.Message())
				}
			}
			return fmt.Errorf("stream: %w", err)
		}
		if err := fn(b, invalid, invErr); err != nil {
			return err
		}
	}
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCPlugin returns the go-plugin definition the host dispenses a Client
// from. It has no Source: the host never serves.
func GRPCPlugin() plugin.Plugin { return &grpcPlugin{} }
