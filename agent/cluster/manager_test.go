package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/internal/testnats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ttl is the lease TTL of these tests: short, so that they run in
// seconds, and long enough that a renewal held up 1.5 s (a loaded
// machine, the race detector) does not fence a lease the tests expect
// to keep; waitFor bounds every wait far above it.
const ttl = 2 * time.Second

// fakeHost runs feeds as a map, recording every start with the
// position it was given.
type fakeHost struct {
	mu      sync.Mutex
	feeds   map[string]int
	running map[string]bool
	starts  []started
	settled map[string]sluice.Position
	stopped bool // Run fails, as an agent's does once it is stopping
}

type started struct {
	feed string
	from sluice.Position
}

func newHost(feeds map[string]int) *fakeHost {
	return &fakeHost{feeds: feeds, running: map[string]bool{}, settled: map[string]sluice.Position{}}
}

func (h *fakeHost) Feeds() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.feeds)
}

func (h *fakeHost) Run(want map[string]sluice.Position) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return fmt.Errorf("stopping")
	}
	for f := range h.running {
		if _, ok := want[f]; !ok {
			delete(h.running, f)
		}
	}
	for f, from := range want {
		if !h.running[f] {
			h.running[f] = true
			h.starts = append(h.starts, started{f, from})
		}
	}
	return nil
}

func (h *fakeHost) Settled(feed string) sluice.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settled[feed]
}

func (h *fakeHost) runs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.running))
}

// settle sets the settled position of every feed running here.
func (h *fakeHost) settle(tag string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for f := range h.running {
		h.settled[f] = sluice.Position(tag + "/" + f)
	}
}

func (h *fakeHost) startsOf(feed string) []started {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []started
	for _, s := range h.starts {
		if s.feed == feed {
			out = append(out, s)
		}
	}
	return out
}

// agent is one manager under test, run until stopped or crashed.
type agent struct {
	name   string
	host   *fakeHost
	m      *Manager
	cancel context.CancelFunc
	done   chan struct{}
}

func startAgent(t *testing.T, url, name string, feeds map[string]int, client ...natsbus.Client) *agent {
	t.Helper()
	cl := natsbus.Client{URL: url}
	if len(client) > 0 {
		cl = client[0]
	}
	a := &agent{name: name, host: newHost(feeds), done: make(chan struct{})}
	a.m = New(Options{Client: cl, Cluster: "test", Agent: name, LeaseTTL: ttl, Timeout: time.Second}, a.host)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(a.done)
		a.m.Run(ctx)
	}()
	t.Cleanup(a.crash)
	return a
}

// stop stops the agent as the agent does: Run ends, its feeds stop, then
// Leave.
func (a *agent) stop() {
	a.cancel()
	<-a.done
	a.host.mu.Lock()
	a.host.stopped = true
	a.host.running = map[string]bool{}
	a.host.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.m.Leave(ctx)
}

// crash ends the agent as kill -9 would: its connection closes, nothing
// is given back, and its feeds are taken as dead.
func (a *agent) crash() {
	a.cancel()
	<-a.done
	if a.m.nc != nil {
		a.m.nc.Close()
	}
	a.host.mu.Lock()
	a.host.stopped = true
	a.host.running = map[string]bool{}
	a.host.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// runners maps each feed to the agents running it.
func runners(agents ...*agent) map[string][]string {
	out := make(map[string][]string)
	for _, a := range agents {
		for _, f := range a.host.runs() {
			out[f] = append(out[f], a.name)
		}
	}
	return out
}

// spread reports whether every feed runs on exactly one agent and each
// agent runs n of them.
func spread(n int, feeds map[string]int, agents ...*agent) bool {
	r := runners(agents...)
	for f := range feeds {
		if len(r[f]) != 1 {
			return false
		}
	}
	for _, a := range agents {
		if len(a.host.runs()) != n {
			return false
		}
	}
	return true
}

func sixFeeds() map[string]int {
	return map[string]int{"f1": 1, "f2": 1, "f3": 1, "f4.spot": 1, "f5": 1, "f6": 1}
}

// Three agents share six feeds two each; one crashes and its feeds move
// to the other two once its leases expire, each resuming from the
// position it stored; started again, it gets two feeds back, handed over
// one at a time, each resuming from where its last holder stopped.
func TestSpreadFailoverAndHandBack(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := sixFeeds()
	a := startAgent(t, srv.URL(), "a", feeds)
	b := startAgent(t, srv.URL(), "b", feeds)
	c := startAgent(t, srv.URL(), "c.example", feeds)
	waitFor(t, "two feeds on each agent", func() bool { return spread(2, feeds, a, b, c) })

	// Positions go to KV while the feeds run.
	for _, x := range []*agent{a, b, c} {
		x.host.settle(x.name)
	}
	gone := c.host.runs()
	waitFor(t, "c's positions in KV", func() bool {
		for _, f := range gone {
			if p, err := c.m.position(context.Background(), f); err != nil || string(p) != "c.example/"+f {
				return false
			}
		}
		return true
	})
	// a or b may have run c's feeds before c joined: count the starts
	// from here.
	before := map[*agent]map[string]int{a: {}, b: {}}
	for _, x := range []*agent{a, b} {
		for _, f := range gone {
			before[x][f] = len(x.host.startsOf(f))
		}
	}
	changes := func(kind string) uint64 {
		return a.m.Status().Changes[kind] + b.m.Status().Changes[kind]
	}
	acquired0, released0 := changes(ChangeAcquired), changes(ChangeReleased)
	c.crash()
	took := waitFor(t, "c's feeds on a and b", func() bool { return spread(3, feeds, a, b) })
	t.Logf("c's feeds ran again on a and b %s after the crash (lease TTL %s)", took.Round(time.Millisecond), ttl)
	for _, f := range gone {
		var got []started
		for _, x := range []*agent{a, b} {
			got = append(got, x.host.startsOf(f)[before[x][f]:]...)
		}
		// Once as a rule; a second time if a and b's views of the
		// bucket differed for a moment and the feed moved on while
		// they converged, and then from the same stored position.
		if len(got) == 0 {
			t.Errorf("feed %s did not start on a or b after the crash", f)
		}
		for _, g := range got {
			if string(g.from) != "c.example/"+f {
				t.Errorf("feed %s after the crash started %v; want from c's position", f, got)
			}
		}
		if len(got) > 1 {
			t.Logf("feed %s moved %d times while the views converged", f, len(got))
		}
	}
	// Net, a and b took c's two feeds.
	if got := (changes(ChangeAcquired) - acquired0) - (changes(ChangeReleased) - released0); got != 2 {
		t.Errorf("a and b acquired %d more than they released after the crash; want c's 2", got)
	}

	// c again, a new run of it: two feeds move back, one release at a
	// time per agent, each from the position its holder stored last.
	for _, x := range []*agent{a, b} {
		x.host.settle("before-handback-" + x.name)
	}
	released0 = changes(ChangeReleased)
	c2 := startAgent(t, srv.URL(), "c.example", feeds)
	waitFor(t, "two feeds on each agent again", func() bool { return spread(2, feeds, a, b, c2) })
	if released := changes(ChangeReleased) - released0; released != 2 {
		t.Errorf("%d leases released to the agent that came back, want 2", released)
	}
	for _, f := range c2.host.runs() {
		got := c2.host.startsOf(f)
		if len(got) != 1 || !strings.HasPrefix(string(got[0].from), "before-handback-") {
			t.Errorf("feed %s handed back to c started %v; want once, from its holder's last position", f, got)
		}
	}
	st := c2.m.Status()
	if st.State != StateActive || st.Held != 2 || !slices.Equal(st.Agents, []string{"a", "b", "c.example"}) || len(st.Leases) != 6 {
		t.Errorf("status %+v", st)
	}
	for _, ls := range st.Leases {
		if ls.Holder == "" || (ls.Holder == "c.example") != (ls.State == LeaseHeld) {
			t.Errorf("lease %+v", ls)
		}
	}
}

// An agent that stops gives its leases back at once (deletes them,
// rather than letting them expire), and its feeds start on the other
// from the positions it stored last.
func TestLeaveHandsOverAtOnce(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := sixFeeds()
	a := startAgent(t, srv.URL(), "a", feeds)
	b := startAgent(t, srv.URL(), "b", feeds)
	waitFor(t, "three feeds on each agent", func() bool { return spread(3, feeds, a, b) })
	b.host.settle("b")
	mine := b.host.runs()

	_, js := testnats.Connect(t, srv.URL())
	kv, err := js.KeyValue(t.Context(), leasesBucket("test"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(t.Context(), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// a may have run b's feeds before b joined: count the starts from here.
	before := map[string]int{}
	for _, f := range mine {
		before[f] = len(a.host.startsOf(f))
	}
	b.stop()
	waitFor(t, "every feed on a", func() bool { return spread(6, feeds, a) })
	deleted := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for len(deleted) < len(mine)+1 {
		select {
		case e := <-w.Updates():
			if e != nil && e.Operation() == jetstream.KeyValueDelete {
				deleted[e.Key()] = true
			}
		case <-timeout:
			t.Fatalf("deleted only %v from the bucket; b held %v", slices.Sorted(maps.Keys(deleted)), mine)
		}
	}
	for _, f := range mine {
		if !deleted[leaseKey(Slot{f, 0})] {
			t.Errorf("b's lease of %s was not given back: deleted %v", f, deleted)
		}
		got := a.host.startsOf(f)[before[f]:]
		if len(got) != 1 || string(got[0].from) != "b/"+f {
			t.Errorf("feed %s started on a %v after b left; want once, from b's final position", f, got)
		}
	}
	if !deleted[agentKey("b")] {
		t.Error("b's presence was not given back")
	}
	if got := b.m.Status(); got.State != StateLeft || got.Changes[ChangeReleased] != 3 || got.Held != 0 {
		t.Errorf("b after leaving: %+v", got)
	}
}

// Replicas run on that many distinct agents; a third replica among two
// agents waits for a third agent.
func TestReplicas(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := map[string]int{"hot": 3, "cold": 1}
	a := startAgent(t, srv.URL(), "a", feeds)
	b := startAgent(t, srv.URL(), "b", feeds)
	waitFor(t, "hot on both agents", func() bool {
		r := runners(a, b)
		return len(r["hot"]) == 2 && len(r["cold"]) == 1
	})
	c := startAgent(t, srv.URL(), "c", feeds)
	waitFor(t, "hot on three agents", func() bool {
		r := runners(a, b, c)
		return len(r["hot"]) == 3 && len(r["cold"]) == 1
	})
}

// When the server goes away, the agent stops its feeds before their
// leases could expire; when it is back, the feeds run again.
func TestFencedWhenTheServerIsGone(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := sixFeeds()
	a := startAgent(t, srv.URL(), "a", feeds)
	waitFor(t, "every feed on a", func() bool { return spread(6, feeds, a) })
	srv.Shutdown()
	stopped := waitFor(t, "a's feeds stopped", func() bool { return len(a.host.runs()) == 0 })
	t.Logf("feeds stopped %s after the server went (lease TTL %s)", stopped.Round(time.Millisecond), ttl)
	st := a.m.Status()
	if st.State != StateDisconnected || st.Changes[ChangeLost] != 6 || st.Held != 0 {
		t.Errorf("status with the server gone: %+v", st)
	}
	srv.Restart()
	waitFor(t, "every feed on a again", func() bool { return spread(6, feeds, a) })
}

// Bad credentials and an unreachable server: a clear error in status,
// and no feed runs.
func TestCannotConnect(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{User: "sluice", Password: "right"})
	feeds := sixFeeds()
	wrong := startAgent(t, srv.URL(), "a", feeds, natsbus.Client{URL: srv.URL(), User: "sluice", Password: "wrong"})
	nowhere := startAgent(t, "", "b", feeds, natsbus.Client{URL: "nats://127.0.0.1:1"})
	waitFor(t, "errors in status", func() bool {
		return wrong.m.Status().Error != "" && nowhere.m.Status().Error != ""
	})
	for _, x := range []struct {
		a    *agent
		want string
	}{
		{wrong, "refused this agent's credentials"},
		{nowhere, "connect to nats://127.0.0.1:1"},
	} {
		st := x.a.m.Status()
		if st.State != StateConnecting || !strings.Contains(st.Error, x.want) || strings.Contains(st.Error, "wrong") {
			t.Errorf("agent %s: %+v; want an error with %q", x.a.name, st, x.want)
		}
		if got := x.a.host.runs(); len(got) != 0 {
			t.Errorf("agent %s runs %v without a cluster", x.a.name, got)
		}
	}
	right := startAgent(t, srv.URL(), "c", feeds, natsbus.Client{URL: srv.URL(), User: "sluice", Password: "right"})
	waitFor(t, "every feed on c", func() bool { return spread(6, feeds, right) })
}

// Two running agents with one name: the second is told, and takes
// nothing.
func TestSameNameConflict(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := sixFeeds()
	a := startAgent(t, srv.URL(), "a", feeds)
	waitFor(t, "every feed on a", func() bool { return spread(6, feeds, a) })
	twin := startAgent(t, srv.URL(), "a", feeds)
	waitFor(t, "the conflict", func() bool { return twin.m.Status().State == StateConflict })
	if got := twin.host.runs(); len(got) != 0 {
		t.Errorf("the second agent named a runs %v", got)
	}
	if !strings.Contains(twin.m.Status().Error, `another agent named "a"`) {
		t.Errorf("error %q", twin.m.Status().Error)
	}
}

// A lease bucket created with another TTL wins over the configured one.
func TestBucketTTLWins(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	_, js := testnats.Connect(t, srv.URL())
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: leasesBucket("test"), TTL: 2 * ttl}); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, srv.URL(), "a", sixFeeds())
	waitFor(t, "a active", func() bool { return a.m.Status().State == StateActive })
	if got := a.m.Status().LeaseTTLSeconds; got != (2 * ttl).Seconds() {
		t.Errorf("lease TTL %vs, want the bucket's %s", got, 2*ttl)
	}
}

// An update whose answer was lost (it went through; the agent saw a
// timeout) leaves the agent naming an old revision: the lease still
// holds this run of the agent, so it keeps it rather than stopping the
// feed.
func TestLostAnswerKeepsLease(t *testing.T) {
	srv := testnats.Start(t, testnats.Options{})
	feeds := map[string]int{"f1": 1}
	a := startAgent(t, srv.URL(), "a", feeds)
	waitFor(t, "f1 on a", func() bool { return spread(1, feeds, a) })
	_, js := testnats.Connect(t, srv.URL())
	kv, err := js.KeyValue(t.Context(), leasesBucket("test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{leaseKey(Slot{"f1", 0}), agentKey("a")} {
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		// What the agent's own update would have done.
		if _, err := kv.Update(t.Context(), key, e.Value(), e.Revision()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * ttl)
	if st := a.m.Status(); st.Changes[ChangeLost] != 0 || st.State != StateActive || !spread(1, feeds, a) {
		t.Errorf("after an update whose answer was lost: %+v, running %v", st, a.host.runs())
	}
	// Another agent's value in the key is another matter: the lease is
	// lost, and the feed stops.
	e, err := kv.Get(t.Context(), leaseKey(Slot{"f1", 0}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(t.Context(), e.Key(), encodeValue(lease{Agent: "z", Instance: "other"}), e.Revision()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "f1 stopped on a", func() bool { return len(a.host.runs()) == 0 })
	if st := a.m.Status(); st.Changes[ChangeLost] != 1 {
		t.Errorf("lost %d leases, want 1", st.Changes[ChangeLost])
	}
}
