package faults

// Scale-out through NATS JetStream: two recorder agents stream the same
// Binance feed from the simulated exchange into one replicated (R3)
// stream on a real three-node cluster, while WebSocket connections drop,
// a recorder is killed -9 and restarted, and a NATS node is killed -9
// and restarted. A writer agent reads the stream (sluice-source-nats)
// into SQLite. Every generated trade and aggregate trade id must land in
// SQLite exactly once, and the stream must hold one message per id: the
// recorders' messages carry the same Nats-Msg-Id for the same trade, and
// JetStream stores it once.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testnats"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
)

const busStream = "SLUICE"

func TestNATSRecordersAndWriter(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	sd := seed(t)
	r := &rig{rng: rand.New(rand.NewPCG(sd, 0x5eed))}
	cluster := testnats.StartCluster(t, 3)
	x := startExchange(t, tradeRate, sd)

	// Two recorders: the Binance feed into the bus. The duplicate window
	// is longer than the run, so every re-sent trade is absorbed.
	recorderBody := fmt.Sprintf(`pipeline: {batch_size: 500, flush_interval: %s, retry_initial: 50ms, retry_max: 500ms}
buffer: {fsync: interval, fsync_interval: 100ms, segment_bytes: %d}
sinks:
  bus: {type: nats, url: %q, stream: %s, create_stream: true, stream_replicas: 3, duplicate_window: 10m, timeout: 5s}
feeds:
  %s:
    plugin: binance
    sinks: [bus]
    config: %s
`, flushInterval, segmentBytes, cluster.URLs(), busStream, feedName, x.feedConfig())
	recorders := []*agentRig{newAgentRig(t, recorderBody), newAgentRig(t, recorderBody)}

	// The writer: the bus into SQLite. Its feed is named like the
	// recorders' so that the rig's status helpers find it.
	writer := newAgentRig(t, fmt.Sprintf(`pipeline: {batch_size: 500, flush_interval: %s, retry_initial: 50ms, retry_max: 500ms}
sinks:
  sqlite: {type: sqlite, path: sluice.db}
feeds:
  %s:
    plugin: nats
    sinks: [sqlite]
    config: {url: %q, stream: %s, timeout: 5s}
`, flushInterval, feedName, cluster.URLs(), busStream))
	r.sqlite = sqliteStore{name: "sqlite", path: writer.dir + "/sluice.db"}
	r.scenario = &scenario{t: t, name: "9 nats recorders and writer", began: time.Now(), x: x, a: writer}
	r.checks = []sinkCheck{{store: r.sqlite}}

	for _, rec := range recorders {
		rec.start()
	}
	writer.start()
	for _, rec := range recorders {
		rec.waitRunning()
	}
	waitSubscribed(t, x, 2)
	x.run()
	deadline := time.Now().Add(startTimeout)
	for !landedSome(t, r.sqlite) {
		if time.Now().After(deadline) {
			t.Fatalf("no trades of every symbol in the writer's SQLite within %s; writer %s", startTimeout, statusJSON(writer.last))
		}
		writer.sleep(5 * pollEvery)
	}
	writer.sleep(1500 * time.Millisecond)

	drop := func() {
		// The writer runs throughout: its sleep watches it.
		writer.sleep(r.between(300*time.Millisecond, 1500*time.Millisecond))
		x.DropRandom(1, binancesim.Abrupt)
	}
	for round := range pick(1, 5) {
		drop()
		// A recorder killed -9 and started again: it resumes from its
		// position and sends again what it had sent after it.
		rec := recorders[round%2]
		rec.kill()
		t.Logf("round %d: recorder %d killed", round+1, round%2+1)
		drop()
		time.Sleep(r.between(200*time.Millisecond, time.Second))
		rec.start()
		rec.waitRunning()
		drop()
		// A NATS node killed -9: its listeners close, the clients move
		// to the other two, the stream keeps its quorum.
		node := (round + 1) % 3
		cluster.Kill(node)
		t.Logf("round %d: nats node %d killed", round+1, node+1)
		drop()
		writer.sleep(r.between(time.Second, 3*time.Second))
		cluster.Restart(node)
		t.Logf("round %d: nats node %d restarted", round+1, node+1)
		drop()
	}
	cluster.WaitReady()
	if x.Stats().Dropped == 0 {
		t.Error("no connection was dropped: the test proved nothing")
	}

	quietRecorders(t, x, recorders)
	x.halt()
	gen := x.generated()
	r.waitLanded(gen)
	writer.poll()
	for _, rec := range append(recorders, writer) {
		rec.stop()
	}
	res, problems := r.verify(r.checks[0], gen)
	res.Elapsed = time.Since(r.began)
	record(res)
	t.Logf("%s:\n%s", r.name, formatResults([]result{res}))
	for _, p := range problems {
		t.Error(p)
	}
	checkStreamHoldsOnePerID(t, cluster.URLs(), gen)
}

// waitSubscribed waits until n connections carry every stream.
func waitSubscribed(t *testing.T, x *exchange, n int) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		full := 0
		for _, c := range x.Conns() {
			if len(c.Streams) >= 2*len(symbols) {
				full++
			}
		}
		if full >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d recorders connected to the exchange within %s", full, n, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quietRecorders lets the market trade for settle with both recorders
// running and connected throughout, so that each sees (and backfills)
// every hole before the market halts.
func quietRecorders(t *testing.T, x *exchange, recs []*agentRig) {
	t.Helper()
	for range 10 {
		deadline := time.Now().Add(reconnectTimeout)
		for {
			running := true
			for _, r := range recs {
				r.poll()
				running = running && feedStatus(r.last).State == agent.FeedRunning
			}
			if running && len(x.Conns()) >= len(recs) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the recorders did not run connected within %s", reconnectTimeout)
			}
			time.Sleep(5 * pollEvery)
		}
		before, conns := make([]agent.FeedStatus, len(recs)), x.Stats().Accepted
		for i, r := range recs {
			before[i] = feedStatus(r.last)
		}
		recs[0].sleep(settle)
		same := x.Stats().Accepted == conns
		for i, r := range recs {
			r.poll()
			after := feedStatus(r.last)
			same = same && after.Pid == before[i].Pid && after.Restarts == before[i].Restarts && after.State == agent.FeedRunning
		}
		if same {
			return
		}
		t.Log("a recorder restarted or reconnected while the market settled; settling again")
	}
	t.Fatal("the recorders kept restarting")
}

// checkStreamHoldsOnePerID compares the stream's message count on each
// symbol's trade and aggregate trade subject with what the exchange
// generated. SQLite (read from the stream) holding every id, and the
// stream holding exactly as many messages, means one message per id.
func checkStreamHoldsOnePerID(t *testing.T, urls string, gen map[string]map[string]truth) {
	t.Helper()
	_, js := testnats.Connect(t, urls)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, busStream)
	if err != nil {
		t.Fatal(err)
	}
	if rep := st.CachedInfo().Config.Replicas; rep != 3 {
		t.Errorf("the stream has %d replicas, want 3", rep)
	}
	for _, sm := range streams {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("sluice."+sm.table+".>"))
		if err != nil {
			t.Fatal(err)
		}
		for _, sym := range symbols {
			subject := strings.Join([]string{"sluice", sm.table, "binance", "spot", sym}, ".")
			got, want := int64(info.State.Subjects[subject]), gen[sm.name][sym].count()
			if got != want {
				t.Errorf("stream subject %s holds %d messages; the exchange generated %d ids", subject, got, want)
			}
		}
	}
}
