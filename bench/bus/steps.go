package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the driver the SQLite sink uses

	"github.com/sluicehq/sluice/bench/internal/harness"
)

const (
	busStream = "BUS"
	symbols   = 100
	// lagSamples is how many messages of a step's stream are read back
	// for its lag: evenly spaced, so the whole step is seen.
	lagSamples = 400
)

type bench struct {
	duration    time.Duration
	leaseTTL    time.Duration
	syncRate    int // the rate of a step against a server with sync_interval: always (0: none)
	binanceRate int // the rate of a step from the simulated exchange through the binance plugin (0: none)
	began       time.Time
	load0       string

	dir  string
	bins bins
	// The nats-server of the step running, a new one for each sink step
	// and for the failover; the source step reads the last synth step's.
	nats    *natsServer
	servers int
	nc      *nats.Conn
	js      jetstream.JetStream
}

func (b *bench) run(rates []int, trials int) (string, error) {
	b.began, b.load0 = time.Now(), loadAvg()
	var err error
	if b.dir, err = os.MkdirTemp("", "sluice-bus-"); err != nil {
		return "", err
	}
	defer os.RemoveAll(b.dir)
	if b.bins, err = build(b.dir); err != nil {
		return "", err
	}
	defer b.stopNATS()

	var rep strings.Builder
	fmt.Fprintf(&rep, "nats-server processes on loopback, a new one (on new data) for each sink step and for the failover (JetStream, file storage, its default sync: the OS writes the files, fsync every 2 minutes), the agents and plugins built from this commit, on the same machine. Source of points: the synth plugin (%d symbols), not the simulated exchange, where the bus is what is measured; one sink step records the simulated exchange through the binance plugin. CPU is user+system time from /proc, per process, over the step.\n\n", symbols)

	fmt.Fprintf(&rep, "## nats sink: synth → agent → nats sink → JetStream\n\n")
	fmt.Fprintf(&rep, "Each step: a new nats-server, agent and stream (`create_stream: true`, R1, default sink settings), a synth feed of rate × %s points. *Stored* is the stream's message count against the points generated (one message id per point, so a resent point is not counted twice). *Sustained* is the points over the span from the first point made (its Sluice-Received header) to the last message stored. *Lag* is a message's stored time minus when the plugin made the point, over %d messages spread over the step. CPU is from the feed running to the last message stored, per point. Pass: nothing lost, sustained ≥ 95%% of the rate, p99 lag < 1 s.\n\n", b.duration, lagSamples)
	fmt.Fprintf(&rep, "| rate/s | points | stored | sustained/s | lag p50 / p99 / max | CPU µs/point agent / plugin / nats-server | RSS MiB agent / plugin / nats-server | pass |\n|---|---|---|---|---|---|---|---|\n")
	var rows []string
	row := func(res *sinkResult) {
		rows = append(rows, res.row())
		fmt.Fprintln(os.Stderr, res.row())
	}
	var last *sinkResult
	for _, r := range rates {
		res, err := b.sinkStep(r, "", "")
		if err != nil {
			return "", fmt.Errorf("sink step %d/s: %w", r, err)
		}
		row(res)
		last = res
	}
	// The source reads the last synth step's stream; then the other
	// sink steps make their own.
	src, err := b.sourceStep(last.points)
	if err != nil {
		return "", fmt.Errorf("source step: %w", err)
	}
	fmt.Fprintln(os.Stderr, src.String())
	var notes []string
	if b.binanceRate > 0 {
		res, err := b.binanceStep(b.binanceRate)
		if err != nil {
			return "", fmt.Errorf("sink step %d/s, binance: %w", b.binanceRate, err)
		}
		row(res)
		notes = append(notes, "*(binance)*: the recorder as deployed: the simulated exchange (in the harness, as bench/e2e runs it; its clock started once every stream is subscribed) → the binance plugin (`trade` of 100 symbols) → the agent → the nats sink. Points are the trades the exchange generated, stored the messages on the trades subjects. The harness's CPU (the exchange) is not counted.")
	}
	if b.syncRate > 0 {
		res, err := b.sinkStep(b.syncRate, " (sync always)", "sync_interval: always")
		if err != nil {
			return "", fmt.Errorf("sink step %d/s, sync always: %w", b.syncRate, err)
		}
		row(res)
		notes = append(notes, "*(sync always)*: another nats-server with `sync_interval: always` (JetStream fsyncs every write before it acknowledges), the synth step otherwise: what an acknowledgement that survives an OS crash costs on one server.")
	}
	for _, r := range rows {
		fmt.Fprintln(&rep, r)
	}
	fmt.Fprintln(&rep)
	for _, n := range notes {
		fmt.Fprintf(&rep, "%s\n\n", n)
	}

	fmt.Fprintf(&rep, "## nats source: JetStream → nats source → agent → SQLite\n\n")
	fmt.Fprintf(&rep, "A writer agent started on the last synth step's stream (%d messages) with the nats source (`deliver: all`) into SQLite (default settings): it replays the stream from the start as fast as it can. Points/s from the feed running to the last point committed (the sink's `written` count, polled every 50 ms), then SQLite read back; apart, how soon the feed had emitted every point (the source's read rate) and the most points waiting in the disk buffer for SQLite.\n\n", last.points)
	fmt.Fprintf(&rep, "%s\n", src)

	if trials > 0 {
		fmt.Fprintf(&rep, "## Failover in cluster mode\n\n")
		fo, err := b.failover(trials)
		if err != nil {
			return "", fmt.Errorf("failover: %w", err)
		}
		rep.WriteString(fo)
	}
	return rep.String(), nil
}

type sinkResult struct {
	label        string
	rate, points int
	stored       uint64
	sustained    float64
	lag          []time.Duration // sorted
	cpu, rss     []float64
	dropped      uint64
	drain        time.Duration
	pass         bool
	note         string
}

func (r *sinkResult) row() string {
	lag := "-"
	if len(r.lag) > 0 {
		lag = fmt.Sprintf("%s / %s / %s", ms(quantile(r.lag, .5)), ms(quantile(r.lag, .99)), ms(r.lag[len(r.lag)-1]))
	}
	per := func(i int) string { return fmt.Sprintf("%.2f", r.cpu[i]/float64(r.stored)*1e6) }
	pass := "**yes**"
	if !r.pass {
		pass = "no"
	}
	if r.note != "" {
		pass += " (" + r.note + ")"
	}
	return fmt.Sprintf("| %d%s | %d | %d | %.0f | %s | %s / %s / %s | %.0f / %.0f / %.0f | %s |",
		r.rate, r.label, r.points, r.stored, r.sustained, lag, per(0), per(1), per(2), r.rss[0], r.rss[1], r.rss[2], pass)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + " ms"
}

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(q*float64(len(s)-1))]
}

func symbolList(prefix string, n int) string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, fmt.Sprintf("%s%04d", prefix, i))
	}
	return strings.Join(s, ", ")
}

// runFeed starts the agent spec describes and waits until it runs feed:
// the agent, for the caller to stop, and the feed's plugin's pid.
func runFeed(spec harness.AgentSpec, feed string) (*harness.Proc, int, error) {
	a, err := harness.StartAgent(spec)
	if err != nil {
		return nil, 0, err
	}
	f, err := a.WaitFeed(context.Background(), feed, 30*time.Second, 20*time.Millisecond, nil)
	if err != nil {
		a.Stop()
		return nil, 0, err
	}
	return a, f.Pid, nil
}

// sinkStep runs a synth feed at rate into the nats sink, on a new
// nats-server with jsExtra in its jetstream block.
func (b *bench) sinkStep(rate int, label, jsExtra string) (*sinkResult, error) {
	if err := b.freshNATS(jsExtra); err != nil {
		return nil, err
	}
	srv, js := b.nats, b.js
	ctx := context.Background()
	n := int(float64(rate) * b.duration.Seconds())
	cfg, err := writeConfig(b.bins, filepath.Join(b.dir, fmt.Sprintf("sink-%d-%d", b.servers, rate)), "", fmt.Sprintf(`sinks:
  bus: {type: nats, url: %q, stream: %s, create_stream: true}
feeds:
  synth:
    plugin: synth
    sinks: [bus]
    config: {symbols: [%s], rate: %d, count: %d}
`, srv.url, busStream, symbolList("S", symbols), rate, n))
	if err != nil {
		return nil, err
	}
	a, plugin, err := runFeed(cfg, "synth")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	w := watch([]int{a.Pid(), plugin, srv.Pid()})

	// Until the stream holds every point, or holds no more for 10s.
	var stream jetstream.Stream
	var held uint64
	progress := time.Now()
	deadline := time.Now().Add(2*b.duration + time.Minute)
	for time.Now().Before(deadline) && time.Since(progress) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
		if stream == nil {
			if stream, err = js.Stream(ctx, busStream); err != nil {
				stream = nil
				continue
			}
		}
		info, err := stream.Info(ctx)
		if err != nil {
			continue
		}
		if info.State.Msgs > held {
			held, progress = info.State.Msgs, time.Now()
		}
		if held >= uint64(n) {
			break
		}
	}
	res := &sinkResult{label: label, rate: rate, points: n, stored: held}
	res.cpu, res.rss = w.end()
	if held == 0 {
		return nil, fmt.Errorf("nothing reached the stream; agent log:\n%s", a.LogTail())
	}
	if st, ok := a.Status(); ok {
		for _, f := range st.Feeds {
			res.dropped += f.PluginDropped
		}
		for _, s := range st.Sinks {
			for _, d := range s.Dropped {
				res.dropped += d
			}
		}
	}

	if err := b.lagSample(ctx, stream, res); err != nil {
		return nil, err
	}
	res.pass = held == uint64(n) && res.sustained >= 0.95*float64(rate) && quantile(res.lag, .99) < time.Second
	switch {
	case held < uint64(n):
		res.note = fmt.Sprintf("%d not stored", uint64(n)-held)
	case res.dropped > 0:
		res.note = fmt.Sprintf("%d dropped", res.dropped)
	}
	return res, nil
}

// freshNATS replaces the bench's nats-server with a new one on new data,
// so that a step's figures for the server (its memory above all) are its
// own.
func (b *bench) freshNATS(jsExtra string) error {
	b.stopNATS()
	b.servers++
	srv, err := startNATS(b.bins.natsServer, filepath.Join(b.dir, fmt.Sprintf("nats-%d", b.servers)), jsExtra)
	if err != nil {
		return err
	}
	b.nats = srv
	if b.nc, err = nats.Connect(srv.url); err != nil {
		return err
	}
	b.js, err = jetstream.New(b.nc)
	return err
}

func (b *bench) stopNATS() {
	if b.nc != nil {
		b.nc.Close()
		b.nc = nil
	}
	if b.nats != nil {
		b.nats.stop()
		b.nats = nil
	}
}

// syncAlwaysStep runs a sink step against a server of its own that
// fsyncs every write.
type sourceResult struct {
	points       int
	took, read   time.Duration
	backlog      int64
	rows, unique int
	cpu, rss     []float64
	note         string
}

func (r *sourceResult) String() string {
	var b strings.Builder
	rate := float64(r.rows) / r.took.Seconds()
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| points in the stream | %d |\n", r.points)
	fmt.Fprintf(&b, "| in SQLite | %d rows, %d distinct points%s |\n", r.rows, r.unique, r.note)
	fmt.Fprintf(&b, "| replay | %s: **%.0f points/s** |\n", r.took.Round(10*time.Millisecond), rate)
	if r.read > 0 {
		fmt.Fprintf(&b, "| read by the nats source (the feed's points) | all in %s: %.0f points/s |\n", r.read.Round(10*time.Millisecond), float64(r.points)/r.read.Seconds())
	}
	fmt.Fprintf(&b, "| points waiting for SQLite (the sink's backlog in the disk buffer) | %d at most |\n", r.backlog)
	names := []string{"agent (SQLite sink)", "nats plugin", "nats-server"}
	for i, n := range names {
		fmt.Fprintf(&b, "| CPU %s | %.2f µs/point (%.2f cores) |\n", n, r.cpu[i]/float64(r.rows)*1e6, r.cpu[i]/r.took.Seconds())
	}
	fmt.Fprintf(&b, "| RSS agent / plugin / nats-server | %.0f / %.0f / %.0f MiB at most |\n", r.rss[0], r.rss[1], r.rss[2])
	return b.String()
}

func (b *bench) sourceStep(points int) (*sourceResult, error) {
	dir := filepath.Join(b.dir, "source")
	cfg, err := writeConfig(b.bins, dir, "", fmt.Sprintf(`sinks:
  db: {type: sqlite, path: bus.db}
feeds:
  bus:
    plugin: nats
    sinks: [db]
    config: {url: %q, stream: %s}
`, b.nats.url, busStream))
	if err != nil {
		return nil, err
	}
	a, plugin, err := runFeed(cfg, "bus")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	start := time.Now()
	w := watch([]int{a.Pid(), plugin, b.nats.Pid()})
	var written uint64
	var read time.Duration // until the feed had emitted every point
	var backlog int64      // the most points waiting for SQLite at once
	done := time.Now()
	for time.Since(done) < 15*time.Second && time.Since(start) < 3*time.Minute {
		time.Sleep(50 * time.Millisecond)
		st, ok := a.Status()
		if !ok {
			continue
		}
		for _, f := range st.Feeds {
			if read == 0 && f.Points >= uint64(points) {
				read = time.Since(start)
			}
		}
		for _, s := range st.Sinks {
			backlog = max(backlog, s.BufferedPoints)
			if s.Written > written {
				written, done = s.Written, time.Now()
			}
		}
		if written >= uint64(points) {
			break
		}
	}
	res := &sourceResult{points: points, took: done.Sub(start), read: read, backlog: backlog}
	res.cpu, res.rss = w.end()
	a.Stop()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "bus.db")+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var lo, hi int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT seq), coalesce(min(seq), -1), coalesce(max(seq), -1) FROM synth`).Scan(&res.rows, &res.unique, &lo, &hi); err != nil {
		return nil, fmt.Errorf("read SQLite: %w", err)
	}
	switch {
	case res.rows == points && res.unique == points && lo == 0 && hi == points-1:
		res.note = ": every point once, none lost"
	default:
		res.note = fmt.Sprintf(": seq %d..%d; **%d missing, %d twice**", lo, hi, points-res.unique, res.rows-res.unique)
	}
	if res.rows == 0 {
		return nil, fmt.Errorf("nothing landed in SQLite; agent log:\n%s", a.LogTail())
	}
	return res, nil
}
