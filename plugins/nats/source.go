package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/lineproto"
	"github.com/sluicehq/sluice/internal/logsample"
	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Version is the plugin's version, reported through Describe.
const Version = "0.1.0"

// Checkpoint pacing: a position is recorded after this many messages,
// after this long, and whenever the feed has caught up with the stream.
const (
	checkpointEvery    = 500
	checkpointInterval = 200 * time.Millisecond
)

// consumerIdle is how long the server keeps a consumer nobody pulls
// from (a plugin that was killed), rather than JetStream's 5 minutes.
const consumerIdle = 30 * time.Second

// discoverBatch is how many messages one request fetches while the
// measurements are discovered.
const discoverBatch = 1000

// Source implements sdk.Source.
//
// Lifecycle: Configure (not ValidateOnly) connects and discovers the
// measurements; Run reads from the resume position on and closes the
// connection when it returns.
type Source struct {
	log *slog.Logger
	bad *logsample.Sampler

	cfg      Config
	nc       *natsgo.Conn
	js       jetstream.JetStream
	declared map[string][]string // measurement -> uniqueness key, as declared
	// failed is why Configure could not reach the stream; Run returns
	// it, so that the agent restarts the plugin with backoff (an error
	// from Configure would count as a config error, never retried).
	failed error
	// resume is the position Run starts after (see Resume).
	resume sluice.Position
}

// New returns an unconfigured source.
func New() *Source {
	return &Source{log: sdk.Logger(), bad: logsample.New(10*time.Second, nil)}
}

func (s *Source) Info() sdk.Info {
	return sdk.Info{Name: "nats", Version: Version}
}

// Configure checks the config and, unless ValidateOnly, connects and
// declares every measurement the stream holds under the subject filter:
// it reads the last message of each subject (a consumer delivering the
// last per subject) and takes its measurement and Sluice-Unique header.
// When the stream cannot be reached it declares nothing and Run fails
// with the reason.
func (s *Source) Configure(ctx context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error) {
	cfg := defaultConfig()
	if err := req.Decode(&cfg); err != nil {
		return nil, err
	}
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errs
	}
	if req.ValidateOnly {
		// Validating needs no server: measurements are known once the
		// feed runs.
		return nil, nil
	}
	s.close()
	client, err := cfg.render()
	if err != nil {
		return nil, sdk.ConfigErrors{{Msg: err.Error()}}
	}
	s.cfg, s.failed, s.declared = cfg, nil, nil
	if err := s.connect(ctx, &client, req.Feed); err != nil {
		s.close()
		s.failed = err
		s.log.Warn("nats: cannot read the stream yet", "stream", cfg.Stream, "err", err)
		return nil, nil
	}
	ms := make([]sluice.Measurement, 0, len(s.declared))
	for _, name := range slices.Sorted(maps.Keys(s.declared)) {
		ms = append(ms, sluice.Measurement{Name: name, Unique: s.declared[name]})
	}
	s.log.Info("nats: measurements in the stream", "stream", cfg.Stream, "measurements", len(ms))
	return ms, nil
}

// connect dials and discovers the measurements.
func (s *Source) connect(ctx context.Context, client *natsbus.Client, feed string) error {
	timeout := time.Duration(s.cfg.Timeout)
	nc, err := natsbus.Connect(client, "sluice-source-"+feed, timeout, s.log, natsbus.Handlers{AsyncError: func(err error) {
		s.log.Warn("nats: error from the server", "err", err)
	}})
	if err != nil {
		if natsbus.IsAuth(err) || clienttls.IsCertificate(err) {
			return sdk.Permanent(err)
		}
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(timeout))
	if err != nil {
		nc.Close()
		return err
	}
	s.nc, s.js = nc, js
	declared, err := s.discover(ctx)
	if err != nil {
		return err
	}
	s.declared = declared
	return nil
}

func (s *Source) close() {
	if s.nc != nil {
		s.nc.Close()
		s.nc, s.js = nil, nil
	}
}

// discover reads the last message of every subject the filter matches.
func (s *Source) discover(ctx context.Context) (map[string][]string, error) {
	timeout := time.Duration(s.cfg.Timeout)
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if st.CachedInfo().State.Msgs == 0 {
		return out, nil
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cons, err := s.js.OrderedConsumer(cctx, s.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    s.cfg.Subjects,
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: stream %q: %w", s.cfg.Stream, err)
	}
	for {
		batch, err := cons.Fetch(discoverBatch, jetstream.FetchMaxWait(timeout))
		if err != nil {
			return nil, fmt.Errorf("nats: discover measurements: %w", err)
		}
		got, done := 0, false
		for msg := range batch.Messages() {
			got++
			if name, ok := firstMeasurement(msg.Data()); ok {
				if _, seen := out[name]; !seen || msg.Headers().Get(natsbus.HeaderUnique) != "" {
					unique, _ := natsbus.ParseUnique(msg.Headers().Get(natsbus.HeaderUnique))
					out[name] = unique
				}
			}
			if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, natsgo.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("nats: discover measurements: %w", err)
		}
		if done || got == 0 {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// firstMeasurement is the measurement of a message's first good line.
func firstMeasurement(data []byte) (string, bool) {
	var name string
	var found bool
	lineproto.Decode(data, time.Time{}, func(p sluice.Point) {
		if !found {
			name, found = p.Measurement, true
		}
	})
	return name, found
}

func (s *Source) stream(ctx context.Context) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.Timeout))
	defer cancel()
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// A recorder may create it later: retried with the feed's backoff.
		return nil, fmt.Errorf("nats: stream %q does not exist (yet)", s.cfg.Stream)
	case err != nil && natsbus.IsAuth(err):
		return nil, sdk.Permanent(fmt.Errorf("nats: stream %q: %w", s.cfg.Stream, err))
	case err != nil:
		return nil, fmt.Errorf("nats: stream %q: %w", s.cfg.Stream, err)
	}
	return st, nil
}

// errUndeclared ends Run when a message holds a measurement Configure did
// not declare, so that the agent restarts the plugin and the next
// Configure declares it before its points are written.
type errUndeclared struct {
	measurement string
	seq         uint64
}

func (e errUndeclared) Error() string {
	return fmt.Sprintf("measurement %q with a uniqueness key first seen at stream sequence %d; restarting to declare it", e.measurement, e.seq)
}

// Resume sets the position Run starts after: a stream sequence this
// source checkpointed.
func (s *Source) Resume(pos sluice.Position) error {
	s.resume = pos
	return nil
}

// Run emits the stream's points from after the resume position (or from
// where Deliver says, without one), and checkpoints the stream sequence
// of the last message emitted.
func (s *Source) Run(ctx context.Context, out sdk.Emitter) error {
	defer s.close()
	switch {
	case s.failed != nil:
		return s.failed
	case s.js == nil:
		return errors.New("nats: Run before Configure")
	}
	pos, err := decodePosition(s.resume)
	if err != nil {
		s.log.Warn("nats: ignoring a position that does not decode", "err", err)
		pos = position{}
	}
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	info := st.CachedInfo()
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: s.cfg.Subjects, InactiveThreshold: consumerIdle}
	switch {
	case pos.Stream == s.cfg.Stream && pos.Created.Equal(info.Created) && pos.Seq > 0:
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.Seq+1
		if first := info.State.FirstSeq; pos.Seq+1 < first {
			s.log.Warn("nats: messages after the position are gone from the stream (its limits discarded them); reading from the oldest it holds",
				"stream", s.cfg.Stream, "position", pos.Seq, "first", first, "lost", first-pos.Seq-1)
		}
	case pos.Stream != "":
		s.log.Warn("nats: the position is of another stream, or of an earlier stream of this name; starting as deliver says",
			"stream", s.cfg.Stream, "position_stream", pos.Stream, "deliver", s.cfg.Deliver)
		fallthrough
	default:
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
		if s.cfg.Deliver == "new" {
			cc.DeliverPolicy = jetstream.DeliverNewPolicy
		}
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, cc)
	if err != nil {
		return fmt.Errorf("nats: consume stream %q: %w", s.cfg.Stream, err)
	}
	// A heartbeat every 2s: a consumer whose server died is noticed, and
	// made again on another, within seconds.
	iter, err := cons.Messages(jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return fmt.Errorf("nats: consume stream %q: %w", s.cfg.Stream, err)
	}
	defer iter.Stop()
	s.log.Info("nats: reading", "stream", s.cfg.Stream, "subjects", s.cfg.Subjects, "from_seq", cc.OptStartSeq, "deliver", cc.DeliverPolicy.String())

	r := reader{src: s, out: out, pos: position{Stream: s.cfg.Stream, Created: info.Created}, warned: map[string]bool{}}
	for {
		msg, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("nats: reading stream %q: %w", s.cfg.Stream, err)
		}
		if err := r.handle(ctx, msg); err != nil {
			return err
		}
	}
}

// reader turns messages into points and checkpoints.
type reader struct {
	src      *Source
	out      sdk.Emitter
	pos      position
	sinceCP  int
	lastCP   time.Time
	warned   map[string]bool
	badLines uint64
}

func (r *reader) handle(ctx context.Context, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("nats: message without metadata: %w", err)
	}
	h := msg.Headers()
	received := meta.Timestamp
	if v := h.Get(natsbus.HeaderReceived); v != "" {
		if t, err := natsbus.ParseTime(v); err == nil {
			received = t
		}
	}
	unique := h.Get(natsbus.HeaderUnique)
	var points []sluice.Point
	bad, first := lineproto.Decode(msg.Data(), meta.Timestamp, func(p sluice.Point) {
		p.Received = received
		points = append(points, p)
	})
	if bad > 0 {
		r.badLines += uint64(bad)
		if r.src.bad.Allow("line") {
			r.src.log.Warn("nats: lines that are not line protocol skipped", "subject", msg.Subject(), "seq", meta.Sequence.Stream,
				"bad_lines_total", r.badLines, "err", first)
		}
	}
	for i := range points {
		p := &points[i]
		key, declared := r.src.declared[p.Measurement]
		switch {
		case !declared && unique != "":
			// Everything before this message is emitted: the position
			// covers it, and the restart resumes at this message.
			r.checkpoint()
			return errUndeclared{measurement: p.Measurement, seq: meta.Sequence.Stream}
		case declared && unique != natsbus.FormatUnique(key) && !r.warned[p.Measurement]:
			r.warned[p.Measurement] = true
			r.src.log.Warn("nats: a message carries another uniqueness key than the one declared; its points are written under the declared key",
				"measurement", p.Measurement, "declared", key, "message_key", unique, "seq", meta.Sequence.Stream)
		}
	}
	for _, p := range points {
		if err := r.out.EmitWait(ctx, p); err != nil {
			return err
		}
	}
	r.pos.Seq = meta.Sequence.Stream
	r.sinceCP++
	if r.sinceCP >= checkpointEvery || meta.NumPending == 0 || time.Since(r.lastCP) >= checkpointInterval {
		r.checkpoint()
	}
	return nil
}

func (r *reader) checkpoint() {
	if r.pos.Seq == 0 {
		return
	}
	r.out.Checkpoint(r.pos.encode())
	r.sinceCP, r.lastCP = 0, time.Now()
}

var (
	_ sdk.Source  = (*Source)(nil)
	_ sdk.Resumer = (*Source)(nil)
)
