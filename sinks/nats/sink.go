package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/lineproto"
	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
)

// JetStream API error codes the sink branches on.
const (
	codeMessageTooLarge = jetstream.JSErrCodeStreamMessageExceedsMaximum // 10054
	codeStreamNotMatch  = 10060                                          // the subject belongs to another stream
	codeSubjectOverlap  = 10065                                          // a created stream's subjects overlap another's
)

// maxSample bounds RejectedError.Sample.
const maxSample = 512

// asyncErrMemory is how long an error the server sent on its own (a
// permissions violation) explains the missing acks that follow it.
const asyncErrMemory = time.Minute

// Sink publishes each point as one JetStream message (see doc.go).
//
// Lifecycle: New only stores the config; Open validates it and reads the
// files it names, without touching the network; the first Write connects
// and checks (or creates) the stream, and later Writes reconnect and check
// again as needed; Declare and Write may be called by one goroutine at a
// time (a mutex makes misuse safe, not concurrent); Close closes the
// connection and is idempotent.
type Sink struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	tmpl     *template
	keys     sinks.Keys // declared uniqueness keys
	opened   bool
	closed   bool
	nc       *natsgo.Conn
	js       jetstream.JetStream
	streamOK bool // the stream was found able to hold the subjects on this connection
	// peakInFlight is the most messages that waited for their
	// acknowledgement at once, over the sink's life (tests read it).
	peakInFlight int

	asyncMu  sync.Mutex
	asyncErr error // the server's last error outside a request, and when
	asyncAt  time.Time
}

// New returns a NATS sink for cfg (from DefaultConfig, then the sink's
// section). It has no side effects.
func New(cfg Config, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: cfg, log: log.With("sink_type", "nats"), now: time.Now}
}

// Open validates the configuration. The servers being down is not an
// error here: writes fail (retryably) until they are up.
func (s *Sink) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("nats sink: closed")
	case s.opened:
		return errors.New("nats sink: already open")
	}
	if errs := s.cfg.problems(); len(errs) > 0 {
		all := make([]error, len(errs))
		for i, e := range errs {
			all[i] = e
		}
		return fmt.Errorf("nats sink: %w", errors.Join(all...))
	}
	s.tmpl, _ = parseTemplate(s.cfg.Subject)
	s.opened = true
	return nil
}

// Declare records each measurement's uniqueness key, which makes each of
// its points' message id and travels in its Sluice-Unique header.
func (s *Sink) Declare(_ context.Context, ms []sluice.Measurement) error {
	s.mu.Lock() // s.keys is Write's too
	defer s.mu.Unlock()
	s.keys.Declare(ms)
	return nil
}

// Write publishes every point and returns nil once JetStream has
// acknowledged each (stored it, or found its id already stored). At most
// MaxInFlight messages wait for their acknowledgement at once. Errors:
//
//   - *sinks.FailedError: the server refused our credentials or
//     permissions or certificate; the stream is missing and create_stream
//     is off; the stream cannot hold the template's subjects; another
//     stream holds them.
//   - *sinks.RejectedError: points that can never be published (not
//     encodable, a subject too long, larger than the stream's
//     max_msg_size); every other point is stored.
//   - any other error (no connection, a missing acknowledgement, the
//     stream gone): the pipeline retries the whole batch, and message ids
//     keep what was stored already from being stored twice.
func (s *Sink) Write(ctx context.Context, points []sluice.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("nats sink: closed")
	case !s.opened:
		return errors.New("nats sink: not open")
	}
	if err := s.connect(); err != nil {
		return err
	}
	if !s.nc.IsConnected() {
		// nats.go is reconnecting. Publishing now would only fill its
		// reconnect buffer with another copy of the batch at each retry,
		// all sent once it is back (a point without an id stored as many
		// times); the batch waits in the disk buffer instead.
		return s.notConnected(s.nc.LastError())
	}
	if err := s.checkStream(ctx); err != nil {
		return err
	}
	return s.publish(ctx, points)
}

// connect dials when there is no live connection. A connection that
// nats.go closed for good (it gives up after the server refuses the
// credentials twice) is replaced.
func (s *Sink) connect() error {
	if s.nc != nil && !s.nc.IsClosed() {
		return nil
	}
	if s.nc != nil {
		s.log.Warn("nats: connection closed; connecting again", "err", redact.Error(s.nc.LastError()))
		s.nc, s.js = nil, nil
	}
	client := s.cfg.client()
	nc, err := natsbus.Connect(&client, "sluice-sink", s.cfg.Timeout, s.log, natsbus.Handlers{AsyncError: s.noteAsync})
	if err != nil {
		return classifyConn(err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(s.cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(s.cfg.Timeout),
		jetstream.WithDefaultTimeout(s.cfg.Timeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats sink: jetstream: %w", err)
	}
	s.nc, s.js, s.streamOK = nc, js, false
	s.log.Info("nats: connected", "server", nc.ConnectedUrlRedacted(), "stream", s.cfg.Stream)
	return nil
}

func classifyConn(err error) error {
	if natsbus.IsAuth(err) || clienttls.IsCertificate(err) {
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: %w", err)}
	}
	return fmt.Errorf("nats sink: %w", err)
}

func (s *Sink) noteAsync(err error) {
	s.asyncMu.Lock()
	s.asyncErr, s.asyncAt = err, s.now()
	s.asyncMu.Unlock()
	s.log.Warn("nats: error from the server", "err", redact.Error(err))
}

// recentAuthError is the server's last permissions or authorization
// error, if it came within asyncErrMemory.
func (s *Sink) recentAuthError() error {
	s.asyncMu.Lock()
	defer s.asyncMu.Unlock()
	if s.asyncErr != nil && natsbus.IsAuth(s.asyncErr) && s.now().Sub(s.asyncAt) < asyncErrMemory {
		return s.asyncErr
	}
	return nil
}

// checkStream looks the stream up once per connection (and again after
// the stream went missing), creating it if asked to, and refuses a stream
// whose subjects do not hold every subject the template renders.
func (s *Sink) checkStream(ctx context.Context) error {
	if s.streamOK {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	want := s.tmpl.wildcard()
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && s.cfg.CreateStream:
		st, err = s.createStream(ctx)
		if err != nil {
			return err
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: stream %q does not exist: create it (holding subjects %s), or set create_stream: true", s.cfg.Stream, want)}
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: stream %q: %w", s.cfg.Stream, err)}
	case err != nil:
		if natsbus.IsAuth(err) {
			return &sinks.FailedError{Err: fmt.Errorf("nats sink: stream %q: %w", s.cfg.Stream, err)}
		}
		return fmt.Errorf("nats sink: look up stream %q: %w", s.cfg.Stream, err)
	}
	info := st.CachedInfo()
	if !coveredBy(info.Config.Subjects, want) {
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: stream %q holds subjects [%s], which do not hold %s, every subject of the template %q: add %s to the stream's subjects, or change subject",
			s.cfg.Stream, strings.Join(info.Config.Subjects, " "), want, s.cfg.Subject, want)}
	}
	s.streamOK = true
	s.log.Info("nats: stream ready", "stream", s.cfg.Stream, "subjects", info.Config.Subjects,
		"replicas", info.Config.Replicas, "duplicate_window", info.Config.Duplicates, "messages", info.State.Msgs)
	return nil
}

func (s *Sink) createStream(ctx context.Context) (jetstream.Stream, error) {
	subjects := s.cfg.StreamSubjects
	if len(subjects) == 0 {
		subjects = []string{s.tmpl.streamSubject()}
	}
	storage := jetstream.FileStorage
	if s.cfg.StreamStorage == "memory" {
		storage = jetstream.MemoryStorage
	}
	maxBytes := s.cfg.StreamMaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	st, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       s.cfg.Stream,
		Subjects:   subjects,
		Replicas:   s.cfg.StreamReplicas,
		Storage:    storage,
		MaxAge:     s.cfg.StreamMaxAge,
		MaxBytes:   maxBytes,
		Duplicates: s.cfg.DuplicateWindow,
	})
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		s.log.Info("nats: created stream", "stream", s.cfg.Stream, "subjects", subjects, "replicas", s.cfg.StreamReplicas)
		return st, nil
	case errors.As(err, &apiErr) && apiErr.ErrorCode == codeSubjectOverlap:
		return nil, &sinks.FailedError{Err: fmt.Errorf("nats sink: create stream %q with subjects %v: another stream holds some of them: %w", s.cfg.Stream, subjects, err)}
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse:
		// Another recorder created it first.
		return s.js.Stream(ctx, s.cfg.Stream)
	case natsbus.IsAuth(err), errors.As(err, &apiErr) && apiErr.Code == 400:
		return nil, &sinks.FailedError{Err: fmt.Errorf("nats sink: create stream %q: %w", s.cfg.Stream, err)}
	}
	return nil, fmt.Errorf("nats sink: create stream %q: %w", s.cfg.Stream, err)
}

// sent is one message waiting for its acknowledgement.
type sent struct {
	point int
	fut   jetstream.PubAckFuture
}

// publish sends the points and waits for every acknowledgement.
func (s *Sink) publish(ctx context.Context, points []sluice.Point) error {
	var (
		rej    rejections
		window = make([]sent, 0, min(len(points), s.cfg.MaxInFlight))
		head   int   // window[head:] are waiting
		failed error // the first error that makes the batch retry
		body   []byte
	)
	// settle waits for the oldest message's acknowledgement.
	settle := func() {
		w := window[head]
		head++
		if err := s.await(ctx, w.fut); err != nil {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == codeMessageTooLarge {
				rej.add(&points[w.point], err)
				return
			}
			if failed == nil {
				failed = err
			}
		}
	}
	for i := range points {
		if failed != nil || ctx.Err() != nil {
			break
		}
		p := &points[i]
		msg, next, err := s.message(p, body)
		if err != nil {
			rej.add(p, err)
			continue
		}
		body = next
		if len(window)-head >= s.cfg.MaxInFlight {
			settle()
			if head > len(window)/2 {
				window = append(window[:0], window[head:]...)
				head = 0
			}
		}
		fut, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			failed = fmt.Errorf("nats sink: publish: %w", err)
			break
		}
		window = append(window, sent{point: i, fut: fut})
		s.peakInFlight = max(s.peakInFlight, len(window)-head)
	}
	// Every message sent is settled before returning, so that none is
	// still in flight when the batch is retried.
	for head < len(window) && ctx.Err() == nil {
		settle()
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("nats sink: %w", ctx.Err())
	case failed != nil:
		return s.classify(failed)
	case rej.n > 0:
		return &sinks.RejectedError{Rejected: rej.n, Sample: rej.sample,
			Err: fmt.Errorf("nats sink: %d of %d points cannot be published, first: %s", rej.n, len(points), rej.reason)}
	}
	return nil
}

// await returns nil once fut is acknowledged.
func (s *Sink) await(ctx context.Context, fut jetstream.PubAckFuture) error {
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classify turns the first error of a batch into its class.
func (s *Sink) classify(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		// Nothing listens on the subject: the stream is gone (deleted, or
		// every replica down). Look it up again before the next batch.
		s.streamOK = false
		return fmt.Errorf("nats sink: no stream answered on its subjects (stream %q deleted, or unavailable): %w", s.cfg.Stream, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == codeStreamNotMatch:
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: the subjects are held by a stream other than %q: %w", s.cfg.Stream, err)}
	case natsbus.IsAuth(err):
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: %w", err)}
	}
	if auth := s.recentAuthError(); auth != nil {
		return &sinks.FailedError{Err: fmt.Errorf("nats sink: %w (the server said: %v)", err, auth)}
	}
	if s.nc != nil && !s.nc.IsConnected() {
		// The acknowledgements timed out because the connection went
		// away: say that, not only "timeout waiting for ack".
		return s.notConnected(err)
	}
	return fmt.Errorf("nats sink: %w", err)
}

// notConnected is the retryable error of a Write while the connection is
// down and nats.go reconnects to the servers on its own.
func (s *Sink) notConnected(cause error) error {
	client := s.cfg.client()
	if cause == nil {
		return fmt.Errorf("nats sink: not connected to %s (reconnecting)", client.Redacted())
	}
	return fmt.Errorf("nats sink: not connected to %s (reconnecting): %w", client.Redacted(), redact.Error(cause))
}

// message builds p's message, appending its body to body (a buffer the
// Write keeps for its messages: their bodies must live until they are
// acknowledged, since a message nobody answered is sent again).
func (s *Sink) message(p *sluice.Point, body []byte) (*natsgo.Msg, []byte, error) {
	ns, ok := lineproto.Nanos(p.Time)
	if !ok || p.Time.IsZero() {
		return nil, body, lineproto.ErrTimeRange
	}
	subject, err := s.tmpl.render(p)
	if err != nil {
		return nil, body, err
	}
	start := len(body)
	body, err = lineproto.AppendPoint(body, p, ns, lineproto.UintsTagged)
	if err != nil {
		return nil, body, err
	}
	msg := &natsgo.Msg{Subject: subject, Data: body[start:len(body):len(body)], Header: make(natsgo.Header, 4)}
	msg.Header[jetstream.ExpectedStreamHeader] = []string{s.cfg.Stream}
	if unique := s.keys.Of(p.Measurement); len(unique) > 0 {
		msg.Header[natsbus.HeaderUnique] = []string{natsbus.FormatUnique(unique)}
		if id := msgID(p, unique); id != "" {
			msg.Header[jetstream.MsgIDHeader] = []string{id}
		}
	}
	if !p.Received.IsZero() {
		msg.Header[natsbus.HeaderReceived] = []string{natsbus.FormatTime(p.Received)}
	}
	return msg, body, nil
}

// rejections counts the points of a Write that can never be published.
type rejections struct {
	n              int
	sample, reason string
}

func (r *rejections) add(p *sluice.Point, err error) {
	r.n++
	if r.n == 1 {
		r.reason = truncate(err.Error(), maxSample/2)
		r.sample = truncate(fmt.Sprintf("%q %v %s", p.Measurement, p.Tags, p.Time.Format(time.RFC3339Nano)), maxSample/2) + ": " + r.reason
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// Close closes the connection. It is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.nc != nil {
		s.nc.Close()
		s.nc, s.js = nil, nil
	}
	return nil
}

var _ sinks.Sink = (*Sink)(nil)
