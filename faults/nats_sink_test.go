package faults

// The nats sink in the real agent, against what goes wrong on the bus:
// the server down when the agent starts or lost while it writes, a stream
// whose subjects cannot hold the sink's, the sink's subjects held by
// another stream, wrong credentials, the stream deleted while the sink
// writes (with and without create_stream). Each shows a clear error in the sink's status while the points
// wait in the disk buffer; once the cause is fixed every point is in the
// stream once.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testnats"
)

// synthPoints is how many points the synth feed of these tests emits:
// symbols AAA and BBB alternately, seq 0..synthPoints-1.
const synthPoints = 3000

func natsSinkAgentConfig(url, extraSink string) string {
	return fmt.Sprintf(`sinks:
  bus: {type: nats, url: %q, stream: %s, timeout: 2s, retry_initial: 50ms, retry_max: 500ms%s}
feeds:
  synth: {plugin: synth, sinks: [bus], config: {symbols: [AAA, BBB], count: %d, rate: 1000}}
`, url, busStream, extraSink, synthPoints)
}

// waitSink waits until the sink's state and last error are as wanted.
func waitSink(t *testing.T, a *testagent.Agent, state, errPart string) agent.SinkStatus {
	t.Helper()
	st := a.WaitFor(t, fmt.Sprintf("sink %s with an error saying %q", state, errPart), func(st agent.Status) bool {
		s := testagent.Sink(st, "bus")
		return string(s.State) == state && strings.Contains(s.LastError, errPart)
	})
	s := testagent.Sink(st, "bus")
	t.Logf("sink %s: %s (%d points buffered)", s.State, s.LastError, s.BufferedPoints)
	return s
}

// synthIDs reads the message ids of a stream: each synth point's
// "synth:SYMBOL:SEQ", with how many messages carry it.
func synthIDs(t *testing.T, url string) map[string]int {
	t.Helper()
	_, js := testnats.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, busStream)
	if err != nil {
		t.Fatal(err)
	}
	n := int(st.CachedInfo().State.Msgs)
	ids := map[string]int{}
	if n == 0 {
		return ids
	}
	c, err := js.OrderedConsumer(ctx, busStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		b, err := c.Fetch(n-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			ids[m.Headers().Get(jetstream.MsgIDHeader)]++
			got++
		}
		if err := b.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func synthID(seq int) string {
	return fmt.Sprintf("synth:%s:%d", [...]string{"AAA", "BBB"}[seq%2], seq)
}

// waitStreamHolds waits until the stream holds want messages.
func waitStreamHolds(t *testing.T, url string, want uint64) {
	t.Helper()
	_, js := testnats.Connect(t, url)
	deadline := time.Now().Add(time.Minute)
	var got uint64
	for time.Now().Before(deadline) {
		if st, err := js.Stream(context.Background(), busStream); err == nil {
			if got = st.CachedInfo().State.Msgs; got >= want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the stream holds %d messages after a minute, want %d", got, want)
}

// checkAllOnce checks that the stream holds every synth point once.
func checkAllOnce(t *testing.T, url string) {
	t.Helper()
	waitStreamHolds(t, url, synthPoints)
	ids := synthIDs(t, url)
	for seq := range synthPoints {
		if n := ids[synthID(seq)]; n != 1 {
			t.Errorf("%s is in the stream %d times", synthID(seq), n)
			return
		}
	}
	if len(ids) != synthPoints {
		t.Errorf("the stream holds %d ids, want %d", len(ids), synthPoints)
	}
}

func TestNATSSinkBadInput(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	t.Run("server unreachable at start", func(t *testing.T) {
		t.Parallel()
		srv := testnats.Start(t, testnats.Options{})
		srv.Shutdown()
		a := testagent.Start(t, natsSinkAgentConfig(srv.URL(), ", create_stream: true"))
		s := waitSink(t, a, "retrying", strings.TrimPrefix(srv.URL(), "nats://"))
		if s.BufferedPoints == 0 {
			t.Error("nothing buffered while the server was down")
		}
		srv.Restart()
		checkAllOnce(t, srv.URL())
	})
	t.Run("stream with conflicting subjects", func(t *testing.T) {
		t.Parallel()
		srv := testnats.Start(t, testnats.Options{})
		_, js := testnats.Connect(t, srv.URL())
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: busStream, Subjects: []string{"sluice.trades.>"}}); err != nil {
			t.Fatal(err)
		}
		a := testagent.Start(t, natsSinkAgentConfig(srv.URL(), ", create_stream: true"))
		waitSink(t, a, "failed", "which do not hold sluice.*.*.*.*")
		// The operator widens the stream's subjects: the sink, retrying
		// at its slowest pace, writes what waited.
		if _, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: busStream, Subjects: []string{"sluice.>"}}); err != nil {
			t.Fatal(err)
		}
		checkAllOnce(t, srv.URL())
	})
	t.Run("subjects held by another stream", func(t *testing.T) {
		t.Parallel()
		srv := testnats.Start(t, testnats.Options{})
		_, js := testnats.Connect(t, srv.URL())
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"sluice.>"}}); err != nil {
			t.Fatal(err)
		}
		a := testagent.Start(t, natsSinkAgentConfig(srv.URL(), ", create_stream: true"))
		waitSink(t, a, "failed", "another stream holds some of them")
		// The operator removes the other stream: the sink creates its
		// own and writes what waited.
		if err := js.DeleteStream(ctx, "OTHER"); err != nil {
			t.Fatal(err)
		}
		checkAllOnce(t, srv.URL())
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		srv := testnats.Start(t, testnats.Options{User: "recorder", Password: "right-password"})
		a := testagent.Launch(t, testagent.WriteConfig(t, t.TempDir(), natsSinkAgentConfig(srv.URL(), ", create_stream: true, user: recorder")),
			"SLUICE_SINKS__BUS__PASSWORD=wrong-password")
		waitSink(t, a, "failed", "Authorization Violation")
		a.WaitFor(t, "every point received", func(st agent.Status) bool { return testagent.Sink(st, "bus").Received >= synthPoints })
		if st, _ := a.Status(t); strings.Contains(fmt.Sprint(st), "wrong-password") {
			t.Error("the status shows the password")
		}
		// Killed, and started again with the right password: the points
		// waited in the disk buffer.
		a.Kill()
		b := testagent.Launch(t, a.Config, "SLUICE_SINKS__BUS__PASSWORD=right-password")
		checkAllOnce(t, strings.Replace(srv.URL(), "nats://", "nats://recorder:right-password@", 1))
		b.Stop(t)
	})
	t.Run("server lost while the sink writes", func(t *testing.T) {
		t.Parallel()
		srv := testnats.Start(t, testnats.Options{})
		a := testagent.Start(t, natsSinkAgentConfig(srv.URL(), ", create_stream: true"))
		waitStreamHolds(t, srv.URL(), 500)
		srv.Shutdown()
		// The connection reconnects on its own; until it does, the
		// batches in flight go unacknowledged and the sink says why.
		s := waitSink(t, a, "retrying", "not connected to "+srv.URL()+" (reconnecting)")
		if s.BufferedPoints == 0 {
			t.Error("nothing buffered while the server was down")
		}
		srv.Restart()
		checkAllOnce(t, srv.URL())
	})
	t.Run("stream deleted under the running sink", func(t *testing.T) {
		t.Parallel()
		streamDeletedUnderSink(t, false)
	})
	t.Run("stream deleted under the running sink, create_stream", func(t *testing.T) {
		t.Parallel()
		streamDeletedUnderSink(t, true)
	})
}

// streamDeletedUnderSink deletes the stream while the agent's nats sink
// writes into it. The test reads everything the old stream stored before
// it is deleted (the agent is stopped with SIGSTOP for that moment, so
// that nothing lands unseen between the last read and the delete): those
// points went with the stream, by the operator's hand. Every other point
// must land in the new stream, once; with create_stream the sink makes
// the new stream itself, without it the sink fails saying the stream does
// not exist until the operator makes it again.
func streamDeletedUnderSink(t *testing.T, create bool) {
	srv := testnats.Start(t, testnats.Options{})
	_, js := testnats.Connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: busStream, Subjects: []string{"sluice.>"}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		old     = map[string]int{}
		lastSeq uint64
	)
	c, err := js.OrderedConsumer(ctx, busStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		mu.Lock()
		old[m.Headers().Get(jetstream.MsgIDHeader)]++
		lastSeq = md.Sequence.Stream
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	extra := ""
	if create {
		extra = ", create_stream: true"
	}
	a := testagent.Start(t, natsSinkAgentConfig(srv.URL(), extra))
	waitStreamHolds(t, srv.URL(), 500)

	// Frozen, the agent sends nothing more; what it sent before is
	// stored once the stream's last sequence stops moving.
	if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var frozenAt uint64
	for stable := 0; stable < 5; {
		time.Sleep(100 * time.Millisecond)
		st, err := js.Stream(ctx, busStream)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		seen := lastSeq
		mu.Unlock()
		if last := st.CachedInfo().State.LastSeq; last == frozenAt && seen == last {
			stable++
		} else {
			frozenAt, stable = last, 0
		}
	}
	cc.Stop()
	if err := js.DeleteStream(ctx, busStream); err != nil {
		t.Fatal(err)
	}
	if err := a.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	t.Logf("the old stream held %d messages (%d ids) when it was deleted", frozenAt, len(old))
	mu.Unlock()
	if !create {
		waitSink(t, a, "failed", `stream "SLUICE" does not exist`)
		// The operator makes the stream again: what was not yet in the
		// old one when it went lands in the new one.
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: busStream, Subjects: []string{"sluice.>"}}); err != nil {
			t.Fatal(err)
		}
	}
	a.WaitFor(t, "every point written", func(st agent.Status) bool {
		s := testagent.Sink(st, "bus")
		return s.Received >= synthPoints && s.BufferedPoints == 0 && s.State == "ok"
	})
	ids := synthIDs(t, srv.URL())
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s is in the new stream %d times", id, n)
		}
	}
	var lost []int
	mu.Lock()
	defer mu.Unlock()
	for seq := range synthPoints {
		if ids[synthID(seq)] == 0 && old[synthID(seq)] == 0 {
			lost = append(lost, seq)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d points in neither the old stream nor the new one: %s", len(lost), firstFew(lost))
	}
	t.Logf("the new stream holds %d points; %d were only in the old one", len(ids), synthPoints-len(ids))
}
