package faults

// Cluster mode: three agents share one feeds directory of six synth
// feeds through JetStream KV leases on a real three-node NATS cluster,
// and write them into one replicated stream through the nats sink. The
// feeds spread two to an agent; one agent is killed -9; its feeds must
// run again on the other two within the lease TTL (and a quarter, the
// renewal interval), each resuming from the position the dead agent
// stored in KV; the agent, started again, gets two feeds handed back.
// The stream (the one store every agent writes) must hold every point
// of every feed once: no gap, no duplicate. SLUICE_FAULTS=full kills
// each agent in turn, then each NATS node.
//
// Why a shared stream and not a SQLite file per agent: a feed moves
// between agents, so a per-agent store holds pieces of it, and only
// their union could be checked; the stream is the store the agents
// share, and its message ids (the synth points' uniqueness key) make the
// overlap a move sends again harmless, which is what cluster mode relies
// on. Synth feeds, because their points carry a sequence number from
// the position they resume from: a feed that resumed from anywhere else
// than its stored position shows in how many points it emitted.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/cluster"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testnats"
)

const (
	clusterName   = "faults"
	clusterStream = "CLUSTER"
	clusterTTL    = 3 * time.Second
	clusterFeeds  = 6
)

// clusterPeer is one agent of the cluster: its config, and its current
// process.
type clusterPeer struct {
	name, config string
	proc         *testagent.Agent
	runs         []*testagent.Agent
	last         agent.Status
}

// start starts a new process of the agent.
func (p *clusterPeer) start(t *testing.T) {
	p.proc = testagent.Launch(t, p.config)
	p.runs = append(p.runs, p.proc)
}

// keepLogs writes every run's log into SLUICE_FAULTS_LOGDIR, if set.
func (p *clusterPeer) keepLogs(t *testing.T) {
	dir := os.Getenv(envLogDir)
	if dir == "" {
		return
	}
	var b strings.Builder
	for i, r := range p.runs {
		fmt.Fprintf(&b, "----- test: %s run %d -----\n%s", p.name, i+1, r.Log())
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+p.name+".log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("keeping the agent log: %v", err)
	}
}

func (p *clusterPeer) status(t *testing.T) (agent.Status, bool) {
	st, ok := p.proc.Status(t)
	if ok {
		p.last = st
	}
	return st, ok
}

// running lists the feeds running on the agent.
func running(st agent.Status) []string {
	var out []string
	for _, f := range st.Feeds {
		if f.State == agent.FeedRunning {
			out = append(out, f.Name)
		}
	}
	return out
}

func clusterFeedName(i int) string { return fmt.Sprintf("s%d", i+1) }

// symbolOf is the one symbol of a feed: its points' subject and id.
func symbolOf(feed string) string { return strings.ToUpper(feed) }

func TestClusterFeedsMoveOnAgentKill(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	count := pick(4000, 12000) // points per feed, at rate points/s
	const rate = 200
	nats := testnats.StartCluster(t, 3)
	urls := nats.URLs()

	feedsDir := t.TempDir()
	for i := range clusterFeeds {
		f := clusterFeedName(i)
		testagent.WriteFile(t, filepath.Join(feedsDir, f+".yaml"), fmt.Sprintf(`feeds:
  %s:
    plugin: synth
    sinks: [bus]
    config: {symbols: [%s], rate: %d, count: %d}
`, f, symbolOf(f), rate, count))
	}
	var peers []*clusterPeer
	for i := range 3 {
		name := fmt.Sprintf("agent-%d", i+1)
		body := fmt.Sprintf(`cluster: {url: %q, name: %s, agent: %s, lease_ttl: %s, timeout: 2s}
sinks:
  bus: {type: nats, url: %q, stream: %s, subject: "sluice.{measurement}.{symbol}", create_stream: true, stream_replicas: 3, duplicate_window: 10m, timeout: 5s, retry_initial: 50ms, retry_max: 500ms}
`, urls, clusterName, name, clusterTTL, urls, clusterStream)
		p := &clusterPeer{name: name, config: testagent.WriteConfigFeedsDir(t, t.TempDir(), feedsDir, body)}
		p.start(t)
		t.Cleanup(func() { p.keepLogs(t) })
		peers = append(peers, p)
	}

	holders := waitSpread(t, peers, 2)
	t.Logf("spread: %v", holders)
	// Let the feeds run, and their positions reach KV.
	time.Sleep(2 * time.Second)

	rounds := pick(1, 3)
	var moved map[string]uint64 // the last round's moved feeds, and the position each resumed from
	changesAtMove := map[string]map[string]uint64{}
	for round := range rounds {
		victim := peers[round%len(peers)]
		survivors := slices.DeleteFunc(slices.Clone(peers), func(p *clusterPeer) bool { return p == victim })
		st, _ := victim.status(t)
		gone := running(st)
		if len(gone) == 0 {
			t.Fatalf("round %d: %s runs no feed", round+1, victim.name)
		}
		plugins := pluginPids(st)
		killed := time.Now()
		victim.proc.Kill()
		t.Logf("round %d: %s killed -9; it ran %v", round+1, victim.name, gone)
		// What a feed resumes from is what its dead holder stored last.
		// The holder is dead, and no other may write it before the lease
		// expires; a write it sent just before dying lands at once.
		time.Sleep(300 * time.Millisecond)
		moved = storedPositions(t, urls, gone)

		took := waitMoved(t, survivors, gone)
		for _, p := range survivors {
			changesAtMove[p.name] = maps.Clone(p.last.Cluster.Changes)
		}
		var lastSince time.Time
		for _, p := range survivors {
			for _, l := range p.last.Cluster.Leases {
				if slices.Contains(gone, l.Feed) && l.Holder == p.name {
					if l.Since.After(lastSince) {
						lastSince = l.Since
					}
				}
			}
		}
		leased := lastSince.Sub(killed)
		t.Logf("round %d: %v run again on the survivors %s after the kill; the last new lease was taken %s after it (lease TTL %s)",
			round+1, gone, took.Round(time.Millisecond), leased.Round(time.Millisecond), clusterTTL)
		// The documented bound: the TTL since the dead agent's last
		// renewal, then at most one renewal interval (TTL/4) until a
		// survivor looks again; and up to two seconds for the servers
		// to remove the expired key and the survivors' requests on a
		// busy machine.
		if bound := clusterTTL + clusterTTL/4 + 2*time.Second; leased > bound {
			t.Errorf("round %d: the feeds moved %s after the kill, more than %s", round+1, leased, bound)
		}
		for pid := range plugins {
			for i := 0; i < 100 && alive(pid); i++ {
				time.Sleep(50 * time.Millisecond)
			}
			if alive(pid) {
				t.Errorf("plugin %d outlived its agent", pid)
			}
		}
		var acquired uint64
		for _, p := range survivors {
			acquired += p.last.Cluster.Changes[cluster.ChangeAcquired]
		}
		if acquired < uint64(clusterFeeds) {
			t.Errorf("round %d: the survivors count %d leases acquired, want at least %d", round+1, acquired, clusterFeeds)
		}
		if round < rounds-1 {
			// Started again: two feeds are handed back to it.
			victim.start(t)
			t.Logf("round %d: handed back: %v", round+1, waitSpread(t, peers, 2))
		}
	}

	if full() {
		// A NATS node killed -9 and restarted: the KV buckets and the
		// stream are R3, so leases are renewed through the other two
		// (or, if a bucket's leader went with the node and its election
		// outlasts three quarters of the TTL, they move, and the feeds
		// resume from their stored positions all the same).
		alive := slices.DeleteFunc(slices.Clone(peers), func(p *clusterPeer) bool { return p == peers[(rounds-1)%len(peers)] })
		for node := range 3 {
			nats.Kill(node)
			time.Sleep(clusterTTL)
			nats.Restart(node)
			nats.WaitReady()
			t.Logf("nats node %d killed and restarted; feeds: %v", node+1, waitSpread(t, alive, 3))
		}
	}

	// Every feed runs to its count; the ones the last kill moved emitted
	// exactly what came after their stored position. (If a lease changed
	// hands again since, on a machine too busy to renew in time, the
	// count starts again there; the stream check below still holds.)
	done := waitComplete(t, urls, count)
	t.Logf("every feed complete after %s more", done.Round(time.Millisecond))
	for feed, from := range moved {
		for _, p := range peers {
			st, ok := p.status(t)
			if !ok || !slices.Contains(running(st), feed) {
				continue
			}
			if !maps.Equal(st.Cluster.Changes, changesAtMove[p.name]) {
				t.Logf("feed %s: %s's leases changed since the move (%v, then %v); not counting its points", feed, p.name, changesAtMove[p.name], st.Cluster.Changes)
				continue
			}
			f := testagent.Feed(st, feed)
			if want := uint64(count) - from; f.Points != want {
				t.Errorf("feed %s on %s emitted %d points after the move; resuming from its stored position %d it emits %d",
					feed, p.name, f.Points, from, want)
			}
		}
	}
	checkStreamComplete(t, urls, count)

	// The killed agent again: two feeds (complete by now) are handed back
	// to it, and nothing is sent twice.
	last := peers[(rounds-1)%len(peers)]
	last.start(t)
	t.Logf("handed back: %v", waitSpread(t, peers, 2))
	var released uint64
	for _, p := range peers {
		p.status(t)
		released += p.last.Cluster.Changes[cluster.ChangeReleased]
	}
	if released < 2 {
		t.Errorf("%d leases released to the agent started again, want at least 2", released)
	}
	checkStreamComplete(t, urls, count)
	for _, p := range peers {
		p.proc.Stop(t)
	}
}

// waitSpread waits until every feed runs on exactly one agent and each
// agent runs n, and returns who runs what.
func waitSpread(t *testing.T, peers []*clusterPeer, n int) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		by := map[string][]string{}
		feeds := map[string]int{}
		ok := true
		for _, p := range peers {
			st, up := p.status(t)
			r := running(st)
			ok = ok && up && len(r) == n
			by[p.name] = r
			for _, f := range r {
				feeds[f]++
			}
		}
		if ok && len(feeds) == clusterFeeds && !slices.ContainsFunc(slices.Collect(maps.Values(feeds)), func(c int) bool { return c != 1 }) {
			return by
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feeds did not spread %d to an agent within a minute: %v", n, by)
		}
		time.Sleep(pollEvery)
	}
}

// waitMoved waits until every feed of gone runs on one of peers, and
// returns how long that took.
func waitMoved(t *testing.T, peers []*clusterPeer, gone []string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var on []string
		for _, p := range peers {
			st, _ := p.status(t)
			on = append(on, running(st)...)
		}
		if !slices.ContainsFunc(gone, func(f string) bool { return !slices.Contains(on, f) }) {
			return time.Since(start)
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%v did not run again on the survivors within a minute (they run %v)", gone, on)
		}
		time.Sleep(pollEvery)
	}
}

func pluginPids(st agent.Status) map[int]bool {
	out := map[int]bool{}
	for _, f := range st.Feeds {
		if f.Pid != 0 {
			out[f.Pid] = true
		}
	}
	return out
}

// storedPositions reads the feeds' positions from the cluster's KV: the
// synth position is the next sequence number to emit.
func storedPositions(t *testing.T, urls string, feeds []string) map[string]uint64 {
	t.Helper()
	_, js := testnats.Connect(t, urls)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var kv jetstream.KeyValue
	retry(t, "opening the positions bucket", func() (err error) {
		kv, err = js.KeyValue(ctx, "sluice_"+clusterName+"_positions")
		return err
	})
	out := map[string]uint64{}
	for _, f := range feeds {
		var e jetstream.KeyValueEntry
		retry(t, "reading feed "+f+"'s position", func() (err error) {
			e, err = kv.Get(ctx, f)
			return err
		})
		var v struct {
			Position []byte `json:"position"`
		}
		if err := json.Unmarshal(e.Value(), &v); err != nil || len(v.Position) != 8 {
			t.Fatalf("feed %s: position %q: %v", f, e.Value(), err)
		}
		out[f] = binary.BigEndian.Uint64(v.Position)
	}
	t.Logf("positions in KV: %v", out)
	return out
}

// subjectCounts is the stream's message count per subject.
func subjectCounts(t *testing.T, js jetstream.JetStream) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, clusterStream)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("sluice.>"))
	if err != nil {
		return nil
	}
	return info.State.Subjects
}

// waitComplete waits until the stream holds count messages of every
// feed, and returns how long that took.
func waitComplete(t *testing.T, urls string, count int) time.Duration {
	t.Helper()
	_, js := testnats.Connect(t, urls)
	start := time.Now()
	for {
		got := subjectCounts(t, js)
		full := 0
		for i := range clusterFeeds {
			if got["sluice.synth."+symbolOf(clusterFeedName(i))] >= uint64(count) {
				full++
			}
		}
		if full == clusterFeeds {
			return time.Since(start)
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("the stream does not hold %d points of every feed after 2 minutes: %v", count, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStreamComplete reads the whole stream and checks that it holds
// every sequence number of every feed once: no gap, no duplicate.
func checkStreamComplete(t *testing.T, urls string, count int) {
	t.Helper()
	_, js := testnats.Connect(t, urls)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The cluster's JetStream API may be between leaders for a while
	// after a node restarted: on an error, read it all again.
	var n int
	var seen map[string]map[int]int // symbol → seq → messages
	retry(t, "reading the stream", func() error {
		seen = map[string]map[int]int{}
		st, err := js.Stream(ctx, clusterStream)
		if err != nil {
			return err
		}
		n = int(st.CachedInfo().State.Msgs)
		c, err := js.OrderedConsumer(ctx, clusterStream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		for got := 0; got < n; {
			b, err := c.Fetch(min(n-got, 5000), jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return err
			}
			for m := range b.Messages() {
				got++
				sym, seq := parseSynthLine(t, string(m.Data()))
				if seen[sym] == nil {
					seen[sym] = map[int]int{}
				}
				seen[sym][seq]++
			}
			if err := b.Error(); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range clusterFeeds {
		sym := symbolOf(clusterFeedName(i))
		var missing, twice []int
		for seq := range count {
			switch seen[sym][seq] {
			case 0:
				missing = append(missing, seq)
			case 1:
			default:
				twice = append(twice, seq)
			}
		}
		if len(missing) > 0 || len(twice) > 0 || len(seen[sym]) != count {
			t.Errorf("feed %s: %d of %d points in the stream; missing %s; more than once %s",
				clusterFeedName(i), len(seen[sym]), count, firstFew(missing), firstFew(twice))
		}
	}
	t.Logf("the stream holds %d messages: every point of the %d feeds once", n, clusterFeeds)
}

// parseSynthLine takes the symbol tag and the seq field of one line of
// line protocol as the nats sink writes a synth point.
func parseSynthLine(t *testing.T, line string) (string, int) {
	t.Helper()
	sym, seq := "", -1
	head, rest, _ := strings.Cut(line, " ")
	for _, tag := range strings.Split(head, ",")[1:] {
		if v, ok := strings.CutPrefix(tag, "symbol="); ok {
			sym = v
		}
	}
	fields, _, _ := strings.Cut(rest, " ")
	for _, f := range strings.Split(fields, ",") {
		if v, ok := strings.CutPrefix(f, "seq="); ok {
			fmt.Sscanf(strings.TrimSuffix(v, "i"), "%d", &seq)
		}
	}
	if sym == "" || seq < 0 {
		t.Fatalf("not a synth point: %q", line)
	}
	return sym, seq
}

// retry runs fn until it succeeds, for up to 30 seconds.
func retry(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstFew(s []int) string {
	if len(s) == 0 {
		return "none"
	}
	if len(s) > 10 {
		return fmt.Sprintf("%v... (%d)", s[:10], len(s))
	}
	return fmt.Sprint(s)
}

// Bad input: the cluster's servers unreachable, then refusing the
// agent's credentials. The agent says why in its status and /readyz,
// runs no feed (it holds no lease), and still writes to its sinks what
// its disk buffer held from before: nothing buffered is lost.
func TestClusterUnreachableOrRefused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("faults: an integration suite; -short skips it")
	}
	bus := testnats.Start(t, testnats.Options{})
	bus.Shutdown() // down at first: the feed's points wait in the disk buffer
	kv := testnats.Start(t, testnats.Options{User: "agent", Password: "right-password"})
	cfg := testagent.WriteConfig(t, t.TempDir(), fmt.Sprintf("cluster: {url: %q, name: bad, agent: solo, lease_ttl: 2s, timeout: 1s, user: agent}\n", kv.URL())+
		natsSinkAgentConfig(bus.URL(), ", create_stream: true"))
	right, wrong := "SLUICE_CLUSTER__PASSWORD=right-password", "SLUICE_CLUSTER__PASSWORD=wrong-password"

	a := testagent.Launch(t, cfg, right)
	a.WaitFor(t, "every point of the feed buffered", func(st agent.Status) bool {
		return testagent.Sink(st, "bus").Received >= synthPoints
	})
	a.Kill()

	// The cluster's server is gone, the bus is back.
	kv.Shutdown()
	bus.Restart()
	b := testagent.Launch(t, cfg, right)
	st := b.WaitFor(t, "the cluster's error in status", func(st agent.Status) bool {
		return st.Cluster != nil && st.Cluster.State == cluster.StateConnecting &&
			strings.Contains(st.Cluster.Error, "connect to "+kv.URL())
	})
	t.Logf("cluster unreachable: %s", st.Cluster.Error)
	if len(st.Feeds) != 0 {
		t.Errorf("feeds run without the cluster: %v", running(st))
	}
	checkReadyz(t, b, "cluster bad is connecting: connect to "+kv.URL())
	checkAllOnce(t, bus.URL())
	b.Kill()

	// The server is back, and the agent has the wrong password.
	kv.Restart()
	c := testagent.Launch(t, cfg, wrong)
	st = c.WaitFor(t, "the refused credentials in status", func(st agent.Status) bool {
		return st.Cluster != nil && strings.Contains(st.Cluster.Error, "refused this agent's credentials")
	})
	t.Logf("credentials refused: %s", st.Cluster.Error)
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), "wrong-password") {
		t.Error("the status shows the password")
	}
	if len(st.Feeds) != 0 || st.Cluster.State != cluster.StateConnecting {
		t.Errorf("with refused credentials: state %s, feeds %v", st.Cluster.State, running(st))
	}
	checkReadyz(t, c, "refused this agent's credentials")
	c.Stop(t)

	// Right again: the feed runs here, from where its buffer says it
	// was; nothing reaches the bus twice.
	d := testagent.Launch(t, cfg, right)
	d.WaitFor(t, "the feed held and running", func(st agent.Status) bool {
		return st.Cluster != nil && st.Cluster.State == cluster.StateActive && slices.Contains(running(st), "synth")
	})
	checkAllOnce(t, bus.URL())
	d.Stop(t)
}

// checkReadyz checks that /readyz answers 503 with a reason holding want.
func checkReadyz(t *testing.T, a *testagent.Agent, want string) {
	t.Helper()
	resp, err := http.Get(a.Base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r agent.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, want) }) {
		t.Errorf("readyz: %d %v; want 503 with %q", resp.StatusCode, r.Reasons, want)
	}
}
