package influxdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/clienttls"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/sinks"
)

// Defaults for options the config leaves zero.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultPrecision = "ns"
)

// maxBodyExcerpt bounds how much of an error body is read and kept.
const maxBodyExcerpt = 64 << 10

// maxSample bounds RejectedError.Sample.
const maxSample = 512

// Sink writes points to InfluxDB through its v2 write API
// (/api/v2/write), which InfluxDB 1.8, 2.x and 3.x all serve.
//
// Lifecycle: New only stores the config; Open validates it and builds the
// client (it does not need the server to be up); Declare and Write may then
// be called by one goroutine at a time (a mutex makes misuse safe, not
// concurrent); Close releases connections and is idempotent.
//
// Each Write is one attempt: it sends the batch, splitting it on 413 and
// isolating refused points on a partial write, and returns nil, a
// *sinks.RetryAfterError (429, 503), a *sinks.FailedError (401, 403, 404,
// other request-level 4xx, TLS certificate errors), a *sinks.RejectedError (points InfluxDB will
// never take, every other point written), or a plain error (network, 5xx)
// for the pipeline to retry. Retrying a batch is always safe: see doc.go
// on point identity.
type Sink struct {
	cfg Config
	log *slog.Logger
	now func() time.Time // for Retry-After dates

	mu       sync.Mutex
	client   influxdb2.Client
	service  ihttp.Service
	hc       *http.Client
	writeURL string
	unit     int64 // nanoseconds per timestamp unit of the precision
	ids      map[string]*identity
	closed   bool

	// Reused between writes.
	batch batch
	zbuf  bytes.Buffer
	zw    *gzip.Writer
}

// New returns an InfluxDB sink for cfg. It has no side effects. A zero
// cfg.Timeout means DefaultTimeout and an empty cfg.Precision means ns;
// cfg.Gzip is taken as given (DefaultConfig and Complete default it).
func New(cfg Config, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		cfg: cfg,
		log: log.With("sink_type", "influxdb"),
		now: time.Now,
		ids: make(map[string]*identity),
	}
}

var precisions = map[string]int64{
	"ns": 1,
	"us": int64(time.Microsecond),
	"ms": int64(time.Millisecond),
	"s":  int64(time.Second),
}

// Open validates the configuration and builds the client. InfluxDB being
// down is not an error here: it is logged, and writes fail (retryably)
// until it is back.
func (s *Sink) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return errors.New("influxdb sink: already open")
	}
	if s.closed {
		return errors.New("influxdb sink: closed")
	}
	cfg := s.cfg
	var errs []error
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: want http(s)://host[:port]", redact.URL(cfg.URL)))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("bucket is required (InfluxDB 1.8: \"database/retention_policy\")"))
	}
	prec := cfg.Precision
	if prec == "" {
		prec = DefaultPrecision
	}
	unit, ok := precisions[prec]
	if !ok {
		errs = append(errs, fmt.Errorf("precision %q: want ns, us, ms or s", cfg.Precision))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", cfg.Timeout))
	}
	tlsConfig, tlsErrs := cfg.TLS.Load()
	for _, e := range tlsErrs {
		errs = append(errs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("influxdb sink: %w", err)
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	// The client would gzip for us; we compress ourselves (reusing one
	// writer) and must not have the transport decompress error bodies
	// behind our back either.
	transport.DisableCompression = true
	s.hc = &http.Client{Timeout: timeout, Transport: transport}

	opts := influxdb2.DefaultOptions().
		SetHTTPClient(s.hc).
		SetApplicationName("sluice").
		SetUseGZip(cfg.Gzip).
		// The pipeline owns retries: the client makes exactly one attempt.
		SetMaxRetries(0).
		SetLogLevel(0)
	s.client = influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	s.service = s.client.HTTPService()
	s.writeURL = writeURL(s.service.ServerAPIURL(), cfg.Org, cfg.Bucket, prec)
	s.unit = unit
	if cfg.Gzip && s.zw == nil {
		// BestSpeed: line protocol compresses about 10x even so, at a
		// fraction of the CPU of the default level (see BENCHMARKS.md).
		s.zw, _ = gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	}

	pctx, cancel := context.WithTimeout(ctx, min(timeout, 5*time.Second))
	defer cancel()
	if _, err := s.client.Ping(pctx); err != nil {
		s.log.Warn("influxdb not reachable yet; writes will fail until it is", "url", redact.URL(cfg.URL), "err", redact.Error(err))
	}
	return nil
}

// writeURL is the v2 write endpoint with its query, as the client's own
// write service builds it.
func writeURL(apiURL, org, bucket, precision string) string {
	q := url.Values{}
	q.Set("org", org)
	q.Set("bucket", bucket)
	q.Set("precision", precision)
	return strings.TrimSuffix(apiURL, "/") + "/write?" + q.Encode()
}

// Declare records each measurement's uniqueness key (see doc.go, Point
// identity). It cannot fail: whether a Unique name is a tag or a field is
// only known per point, so a key that needs identity offsets under a
// precision other than ns is reported by Write, as a FailedError.
func (s *Sink) Declare(_ context.Context, ms []sluice.Measurement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		if id := newIdentity(m.Unique); id != nil {
			s.ids[m.Name] = id
		} else {
			delete(s.ids, m.Name)
		}
	}
	return nil
}

// Write stores points as described on Sink.
func (s *Sink) Write(ctx context.Context, points []sluice.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("influxdb sink: closed")
	case s.client == nil:
		return errors.New("influxdb sink: not open")
	}
	b := &s.batch
	b.reset()
	for i := range points {
		if err := b.add(&points[i], s.ids, s.unit); err != nil {
			if errors.Is(err, errNeedsNanos) {
				return &sinks.FailedError{Err: fmt.Errorf("influxdb sink: measurement %q: %w (precision is %q)", points[i].Measurement, err, s.cfg.Precision)}
			}
			b.reject(sampleOfPoint(&points[i]), err.Error())
		}
	}
	if b.lines() > 0 {
		if err := s.writeLines(ctx, b.all()); err != nil {
			return err
		}
	}
	if b.rejected > 0 {
		return &sinks.RejectedError{
			Rejected: b.rejected,
			Sample:   b.sample,
			Err:      fmt.Errorf("influxdb refused %d of %d points, first: %s", b.rejected, len(points), b.reason),
		}
	}
	return nil
}

// writeLines sends the lines idx (indexes into s.batch) as one request and
// resolves what the answer asks for: halves on 413, the refused lines on a
// partial write. It returns only errors that end the Write.
func (s *Sink) writeLines(ctx context.Context, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	b := &s.batch
	status, header, body, err := s.post(ctx, b.body(idx))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("influxdb write: %w", ctx.Err())
		}
		if clienttls.IsCertificate(err) {
			// Waiting will not make a certificate trusted: the operator
			// has to fix tls.* (or the server's certificate).
			return &sinks.FailedError{Err: fmt.Errorf("influxdb write: %w", err)}
		}
		return fmt.Errorf("influxdb write: %w", err)
	}
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusRequestEntityTooLarge:
		if len(idx) == 1 {
			b.reject(b.line(idx[0]), "request too large for the server even as a single point (413)")
			return nil
		}
		half := len(idx) / 2
		if err := s.writeLines(ctx, idx[:half]); err != nil {
			return err
		}
		return s.writeLines(ctx, idx[half:])
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return &sinks.RetryAfterError{
			After: parseRetryAfter(header.Get("Retry-After"), s.now()),
			Err:   statusError(status, body),
		}
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		r := parseRejection(body)
		if !r.pointLevel {
			return &sinks.FailedError{Err: statusError(status, body)}
		}
		return s.resolveRejection(ctx, idx, r)
	case status >= 400 && status < 500:
		// 401, 403, 404 (database, bucket or org missing) and the other
		// request-level refusals need an operator, not a retry.
		return &sinks.FailedError{Err: statusError(status, body)}
	default:
		return statusError(status, body)
	}
}

// resolveRejection handles a point-level 400 for the lines idx: it
// rejects the lines the server named and sends the rest again (writes are
// idempotent, so this is safe whether or not the server kept them), or,
// when the server named none, bisects.
func (s *Sink) resolveRejection(ctx context.Context, idx []int, r rejection) error {
	b := &s.batch
	if r.dropped == len(idx) && r.partial {
		// 1.x dropped every point of this request (a type conflict on
		// all of them, say): no need to find them one by one.
		for _, i := range idx {
			b.reject(b.line(i), r.msg)
		}
		return nil
	}
	bad := b.identify(idx, r)
	if len(bad) == 0 {
		if len(idx) == 1 {
			b.reject(b.line(idx[0]), r.msg)
			return nil
		}
		half := len(idx) / 2
		if err := s.writeLines(ctx, idx[:half]); err != nil {
			return err
		}
		return s.writeLines(ctx, idx[half:])
	}
	rest := make([]int, 0, len(idx)-len(bad))
	for _, i := range idx {
		if reason, ok := bad[i]; ok {
			b.reject(b.line(i), reason)
		} else {
			rest = append(rest, i)
		}
	}
	// 1.x's "partial write: unable to parse ... dropped=0" means the
	// server wrote everything else: no need to send it again.
	if r.partial && r.dropped == 0 && len(r.quoted) == len(bad) {
		return nil
	}
	return s.writeLines(ctx, rest)
}

// post sends one write request through the client's HTTP service and
// returns the status, headers and (bounded) body.
func (s *Sink) post(ctx context.Context, body []byte) (int, http.Header, []byte, error) {
	var reader io.Reader = bytes.NewReader(body)
	if s.cfg.Gzip {
		s.zbuf.Reset()
		s.zw.Reset(&s.zbuf)
		if _, err := s.zw.Write(body); err != nil {
			return 0, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		if err := s.zw.Close(); err != nil {
			return 0, nil, nil, fmt.Errorf("gzip: %w", err)
		}
		reader = bytes.NewReader(s.zbuf.Bytes())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.writeURL, reader)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.service.DoHTTPRequestWithResponse(req, nil)
	if err != nil {
		// The client's errors quote the request URL, which may carry
		// the password of a user:password@ URL.
		return 0, nil, nil, redact.Error(err)
	}
	defer resp.Body.Close()
	var respBody []byte
	if resp.StatusCode >= 300 {
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, maxBodyExcerpt))
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, nil, fmt.Errorf("reading %d response: %w", resp.StatusCode, err)
		}
	}
	// Drain so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyExcerpt))
	return resp.StatusCode, resp.Header, respBody, nil
}

// StatusError is an HTTP error answer from InfluxDB, wrapped inside the
// sinks error classes.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("influxdb write: %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("influxdb write: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

func statusError(status int, body []byte) error {
	return &StatusError{Code: status, Message: truncate(bodyMessage(body), 1024)}
}

// Close releases idle connections. It is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.client != nil {
		s.client.Close()
		s.hc.CloseIdleConnections()
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Do not cut a UTF-8 sequence in half.
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

var _ sinks.Sink = (*Sink)(nil)
