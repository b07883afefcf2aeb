package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/backoff"
	"github.com/sluicehq/sluice/internal/natsbus"
)

// Host is the agent as its Manager sees it.
type Host interface {
	// Feeds is the configured feeds, each with its replicas.
	Feeds() map[string]int
	// Run makes the agent run exactly the feeds in want, and returns once
	// it has stopped the others and started those not running, each
	// resuming from its position in want (nil: the agent's own). It
	// fails once the agent is stopping.
	Run(want map[string]sluice.Position) error
	// Settled is the position of a feed below which its sinks have
	// everything this run of the feed produced; nil if there is none yet.
	Settled(feed string) sluice.Position
}

// Options configure a Manager.
type Options struct {
	Client  natsbus.Client
	Cluster string // the cluster's name: its buckets' names
	Agent   string // this agent's name, unique in the cluster
	// LeaseTTL is the lease TTL the leases bucket is created with; an
	// existing bucket's TTL wins.
	LeaseTTL time.Duration
	// KVReplicas of the buckets when created; 0 picks 3 on a cluster of
	// three or more servers, else 1.
	KVReplicas int
	Timeout    time.Duration // bounds connecting and each request (at most LeaseTTL/4)
	Log        *slog.Logger
}

// Intervals not derived from the lease TTL.
const (
	// positionEvery is how often a held feed's settled position goes to
	// KV when it has moved: what a feed's next holder sends again is what
	// settled since.
	positionEvery = time.Second
	// reconnectMax caps the wait between attempts to reach the servers.
	reconnectMax = 30 * time.Second
)

// Manager is one agent's part in its cluster: it keeps the agent
// announced, holds and renews its leases, takes and hands over feeds,
// and keeps the positions of the feeds it holds in KV.
//
// Lifecycle: New has no side effects. Run connects (retrying until it
// can), then manages the leases until its ctx ends, and leaves the
// leases held. Leave, called once after Run has returned and the agent
// has stopped its feeds, stores their final positions, gives back the
// leases and the agent's presence, and closes the connection. Status
// may be called at any time, from any goroutine.
type Manager struct {
	opts     Options
	host     Host
	log      *slog.Logger
	instance string // this run of the agent: a restarted agent is another holder

	// Owned by Run's goroutine (then Leave's).
	ttl, tick, fence time.Duration
	nc               *nats.Conn
	leases, pos      jetstream.KeyValue
	presenceRev      uint64
	joined           time.Time // zero until the agent's presence is in KV
	since            time.Time // when this run first tried to join
	last             view      // the bucket as last read
	otherPresence    uint64    // revision of a presence of our name not ours, while joining
	held             map[Slot]*holding
	freeSince        map[Slot]time.Time
	lastRelease      time.Time
	written          map[string]sluice.Position // positions last stored, by feed
	handed           []string                   // the feeds of the last want handed to the applier
	warned           map[string]bool

	mu         sync.Mutex
	want       map[string]sluice.Position
	wantGen    uint64
	appliedGen uint64
	st         Status
	wake       chan struct{} // Run → applier
	applied    chan struct{} // applier → Run
}

// holding is a slot this agent holds.
type holding struct {
	rev     uint64
	since   time.Time
	renewed time.Time // when the last renewal that succeeded was sent
	from    sluice.Position
	// releasing: the feed is being stopped to hand the slot over; once
	// the applier has applied gen, the lease goes.
	releasing bool
	gen       uint64
}

// New returns the manager of one agent of a cluster.
func New(opts Options, host Host) *Manager {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("cluster", opts.Cluster)
	id := make([]byte, 8)
	rand.Read(id)
	m := &Manager{
		opts: opts, host: host, log: log, instance: hex.EncodeToString(id),
		held: make(map[Slot]*holding), freeSince: make(map[Slot]time.Time),
		written: make(map[string]sluice.Position), warned: make(map[string]bool),
		wake: make(chan struct{}, 1), applied: make(chan struct{}, 1),
	}
	m.setTTL(opts.LeaseTTL)
	m.st = Status{Cluster: opts.Cluster, Agent: opts.Agent, State: StateConnecting,
		LeaseTTLSeconds: m.ttl.Seconds(), Changes: map[string]uint64{ChangeAcquired: 0, ChangeReleased: 0, ChangeLost: 0}}
	return m
}

// setTTL derives the intervals from the lease TTL: renew every quarter
// of it, and stop a feed whose lease could not be renewed for three
// quarters, a quarter before it expires on the servers.
func (m *Manager) setTTL(ttl time.Duration) {
	m.ttl, m.tick, m.fence = ttl, ttl/4, ttl*3/4
}

func (m *Manager) timeout() time.Duration {
	return min(cmp0(m.opts.Timeout, 5*time.Second), m.tick)
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run takes part in the cluster until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { m.applyLoop(ctx) })

	bo := backoff.New(backoff.Policy{Initial: time.Second, Max: reconnectMax})
	tick := time.NewTimer(0)
	defer tick.Stop()
	positions := time.NewTicker(positionEvery)
	defer positions.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-positions.C:
			if m.leases != nil && m.nc.IsConnected() {
				m.storePositions(ctx, false)
			}
			continue
		case <-m.applied:
		case <-tick.C:
		}
		if m.leases == nil {
			if err := m.connect(ctx); err != nil {
				wait := bo.Next()
				if natsbus.IsAuth(err) {
					wait = reconnectMax // an operator must act; do not hammer the servers
				}
				m.setState(StateConnecting, err)
				m.log.Error("cluster: cannot reach the cluster's servers; running no feeds until it can", "error", err, "retry_in", wait.Round(time.Millisecond))
				tick.Reset(wait)
				continue
			}
			bo.Reset()
		}
		m.step(ctx)
		tick.Reset(m.untilNext())
	}
}

// untilNext is the wait before the next step: a tick, or less if a held
// lease reaches its fence sooner.
func (m *Manager) untilNext() time.Duration {
	d := m.tick
	for _, h := range m.held {
		d = min(d, time.Until(h.renewed.Add(m.fence)))
	}
	return max(d, 10*time.Millisecond)
}

// connect dials the servers and opens (or creates) the buckets.
func (m *Manager) connect(ctx context.Context) error {
	nc, err := natsbus.Connect(&m.opts.Client, "sluice "+m.opts.Agent+" (cluster "+m.opts.Cluster+")", m.timeout(), m.log, natsbus.Handlers{
		AsyncError: func(err error) { m.log.Warn("cluster: nats", "error", err) },
	})
	if err != nil {
		if natsbus.IsAuth(err) {
			return fmt.Errorf("the servers refused this agent's credentials (cluster.user and password, token, credentials_file or nkey_file): %w", err)
		}
		return err
	}
	leases, pos, err := m.buckets(ctx, nc)
	if err != nil {
		nc.Close()
		return err
	}
	m.nc, m.leases, m.pos = nc, leases, pos
	m.log.Info("cluster: connected", "server", nc.ConnectedUrlRedacted(), "lease_ttl", m.ttl)
	return nil
}

// buckets opens the cluster's two buckets, creating them if need be.
func (m *Manager) buckets(ctx context.Context, nc *nats.Conn) (leases, pos jetstream.KeyValue, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*m.timeout())
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		switch {
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return nil, nil, fmt.Errorf("JetStream is not enabled on %s: the cluster's leases need it (nats-server -js)", m.opts.Client.Redacted())
		case natsbus.IsAuth(err):
			return nil, nil, fmt.Errorf("the servers do not let this agent use JetStream: %w", err)
		}
		return nil, nil, fmt.Errorf("JetStream on %s: %w", m.opts.Client.Redacted(), err)
	}
	replicas := m.opts.KVReplicas
	if replicas == 0 {
		replicas = 1
		if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
			replicas = 3
		}
	}
	leases, err = openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: leasesBucket(m.opts.Cluster), TTL: m.ttl, Replicas: replicas,
		Description: "sluice cluster " + m.opts.Cluster + ": agents and the feed leases they hold",
	})
	if err != nil {
		return nil, nil, err
	}
	st, err := leases.Status(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("bucket %s: %w", leasesBucket(m.opts.Cluster), err)
	}
	switch ttl := st.TTL(); {
	case ttl <= 0:
		return nil, nil, fmt.Errorf("bucket %s has no TTL, so leases would never expire: remove it (nats kv rm %s) and let the agents create it again",
			leasesBucket(m.opts.Cluster), leasesBucket(m.opts.Cluster))
	case ttl != m.ttl:
		m.log.Warn("cluster: the leases bucket was created with another lease TTL; using it",
			"bucket", leasesBucket(m.opts.Cluster), "bucket_ttl", ttl, "lease_ttl", m.ttl)
		m.setTTL(ttl)
		m.mu.Lock()
		m.st.LeaseTTLSeconds = ttl.Seconds()
		m.mu.Unlock()
	}
	pos, err = openBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: positionsBucket(m.opts.Cluster), Replicas: replicas,
		Description: "sluice cluster " + m.opts.Cluster + ": where each feed resumes",
	})
	if err != nil {
		return nil, nil, err
	}
	return leases, pos, nil
}

func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if err != nil {
			// Another agent may have created it meanwhile, differently.
			if kv2, err2 := js.KeyValue(ctx, cfg.Bucket); err2 == nil {
				return kv2, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// step is one round: announce, renew, stop what could not be renewed,
// look at the bucket, hand over and take leases.
func (m *Manager) step(ctx context.Context) {
	now := time.Now()
	trouble := func(err error) {
		m.setState(StateDisconnected, err)
		m.handOver()
		m.publish(false)
	}
	if !m.nc.IsConnected() {
		m.fenceExpired(now)
		trouble(errors.New("no connection to the cluster's servers; reconnecting"))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.requestBudget(now))
	err := m.renew(rctx)
	cancel()
	m.fenceExpired(time.Now())
	if err != nil {
		trouble(fmt.Errorf("renewing: %w", err))
		return
	}
	vctx, cancel := context.WithTimeout(ctx, m.timeout())
	v, err := m.view(vctx)
	cancel()
	if err != nil {
		trouble(fmt.Errorf("reading bucket %s: %w", leasesBucket(m.opts.Cluster), err))
		return
	}
	m.last = v
	actx, cancel := context.WithTimeout(ctx, m.timeout())
	m.finishReleases(actx)
	if m.joined.IsZero() {
		m.join(actx, v)
	}
	if !m.joined.IsZero() {
		m.balance(actx, v, time.Now())
	}
	cancel()
	m.handOver()
	m.publish(!m.joined.IsZero())
}

// requestBudget bounds a step's renewals: a quarter of the TTL, and no
// later than the first fence, so that an unreachable server cannot keep
// a feed running past it.
func (m *Manager) requestBudget(now time.Time) time.Duration {
	d := m.timeout()
	for _, h := range m.held {
		d = min(d, h.renewed.Add(m.fence).Sub(now))
	}
	return max(d, 10*time.Millisecond)
}

// renew renews the agent's presence and every lease it holds. A lease
// found taken by another agent is dropped (its feed stops); one found
// expired and free is taken again. It returns the first error of a
// request that was not answered.
func (m *Manager) renew(ctx context.Context) error {
	var failed error
	if !m.joined.IsZero() {
		rev, err := m.leases.Update(ctx, agentKey(m.opts.Agent), m.presenceValue(), m.presenceRev)
		if isRevisionLost(err) {
			var ok bool
			if rev, ok, err = m.reclaim(ctx, agentKey(m.opts.Agent), m.presenceValue()); err == nil && !ok {
				// Taken by an agent of the same name: join again,
				// which says so.
				m.log.Warn("cluster: this agent's presence in the bucket is another's; joining again")
				m.joined, m.presenceRev = time.Time{}, 0
			}
		}
		switch {
		case err != nil:
			failed = err
		case !m.joined.IsZero():
			m.presenceRev = rev
		}
	}
	for _, s := range m.heldSlots() {
		h := m.held[s]
		sent := time.Now()
		rev, err := m.leases.Update(ctx, leaseKey(s), m.leaseValue(h), h.rev)
		ok := err == nil
		if isRevisionLost(err) {
			rev, ok, err = m.reclaim(ctx, leaseKey(s), m.leaseValue(h))
		}
		switch {
		case err != nil:
			failed = cmp.Or(failed, err)
		case ok:
			h.rev, h.renewed = rev, sent
		default:
			m.lose(s, "another agent holds it now")
		}
	}
	return failed
}

// isRevisionLost reports an update refused because the key's revision
// is not the one the agent named: the key expired, another agent took
// it, or the agent's own last update went through but its answer was
// lost.
func isRevisionLost(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound)
}

// reclaim renews a key whose revision the agent lost track of. If the
// key holds this run of the agent (its own update went through), or is
// gone (expired, and nobody took it), the agent has it again; if
// another holds it, ok is false. err is a request that was not answered.
func (m *Manager) reclaim(ctx context.Context, key string, value []byte) (rev uint64, ok bool, err error) {
	e, err := m.leases.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		rev, err = m.leases.Create(ctx, key, value)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, false, nil
		}
		if err == nil {
			m.log.Warn("cluster: a key expired before it was renewed, and was free: taken again", "key", key)
		}
		return rev, err == nil, err
	case err != nil:
		return 0, false, err
	}
	var mine struct {
		Instance string `json:"instance"`
	}
	if json.Unmarshal(e.Value(), &mine) != nil || mine.Instance != m.instance {
		return 0, false, nil
	}
	rev, err = m.leases.Update(ctx, key, value, e.Revision())
	if isRevisionLost(err) {
		return 0, false, nil // changed again meanwhile: not ours
	}
	return rev, err == nil, err
}

// fenceExpired drops the leases not renewed for three quarters of the
// TTL: their feeds stop before the leases expire on the servers, after
// which another agent may take them.
func (m *Manager) fenceExpired(now time.Time) {
	for _, s := range m.heldSlots() {
		if now.Sub(m.held[s].renewed) >= m.fence {
			m.lose(s, fmt.Sprintf("not renewed for %s, three quarters of the lease TTL", now.Sub(m.held[s].renewed).Round(time.Millisecond)))
		}
	}
}

func (m *Manager) lose(s Slot, why string) {
	delete(m.held, s)
	m.count(ChangeLost)
	m.log.Error("cluster: lease lost; stopping the feed here", "feed", s.Feed, "replica", s.N, "reason", why)
}

// view is what the leases bucket holds.
type view struct {
	agents map[string]presence // live agents, by name
	revs   map[string]uint64   // their presence keys' revisions
	leases map[Slot]leaseEntry
}

type leaseEntry struct {
	lease
	rev uint64
}

// view reads the whole leases bucket.
func (m *Manager) view(ctx context.Context) (view, error) {
	v := view{agents: map[string]presence{}, revs: map[string]uint64{}, leases: map[Slot]leaseEntry{}}
	w, err := m.leases.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return v, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return v, errors.New("watch ended")
			}
			if e == nil { // every current value seen
				return v, nil
			}
			m.add(&v, e)
		}
	}
}

func (m *Manager) add(v *view, e jetstream.KeyValueEntry) {
	key := e.Key()
	if s, ok := parseLeaseKey(key); ok {
		l, err := decodeValue[lease](e.Value())
		if err != nil {
			m.warnOnce(key, "cluster: a lease key holds something no agent wrote; taken as held until it expires", "key", key, "error", err)
			l = lease{Agent: "?", Instance: "?"}
		}
		v.leases[s] = leaseEntry{lease: l, rev: e.Revision()}
		return
	}
	if len(key) > len(agentPrefix) && key[:len(agentPrefix)] == agentPrefix {
		p, err := decodeValue[presence](e.Value())
		if err != nil {
			m.warnOnce(key, "cluster: an agent key holds something no agent wrote; ignored", "key", key, "error", err)
			return
		}
		v.agents[p.Agent], v.revs[p.Agent] = p, e.Revision()
	}
}

func (m *Manager) warnOnce(key, msg string, args ...any) {
	if !m.warned[key] {
		m.warned[key] = true
		m.log.Warn(msg, args...)
	}
}

// join puts the agent's presence into the bucket. A presence of the same
// name from another run of the agent (killed before it could leave) is
// waited out until it expires; one that is renewed meanwhile is another
// agent with this name, which is a mistake an operator must fix.
func (m *Manager) join(ctx context.Context, v view) {
	if m.since.IsZero() {
		m.since = time.Now()
	}
	rev, err := m.leases.Create(ctx, agentKey(m.opts.Agent), m.presenceValue())
	if err == nil {
		m.presenceRev, m.joined, m.otherPresence = rev, time.Now(), 0
		m.log.Info("cluster: joined", "agents", slices.Sorted(maps.Keys(v.agents)))
		return
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		m.setState(StateDisconnected, fmt.Errorf("announcing this agent: %w", err))
		return
	}
	other, seen := v.revs[m.opts.Agent]
	switch {
	case seen && m.otherPresence != 0 && other != m.otherPresence:
		m.setState(StateConflict, fmt.Errorf("another agent named %q is running in cluster %q: give each agent its own cluster.agent", m.opts.Agent, m.opts.Cluster))
	default:
		m.setState(StateJoining, fmt.Errorf("waiting up to the lease TTL (%s) for the presence of an earlier run of agent %q to expire", m.ttl, m.opts.Agent))
	}
	if seen && m.otherPresence == 0 {
		m.otherPresence = other
	}
}

// balance takes the free slots the assignment gives this agent (and any
// left free for a whole TTL), and hands over a slot it should not hold,
// one per step.
func (m *Manager) balance(ctx context.Context, v view, now time.Time) {
	feeds := m.host.Feeds()
	slots := Slots(feeds)
	agents := make(map[string][]string, len(v.agents))
	for name, p := range v.agents {
		agents[name] = p.Feeds
	}
	agents[m.opts.Agent] = slices.Sorted(maps.Keys(feeds))
	holders := make(map[Slot]string, len(v.leases))
	for s, l := range v.leases {
		holders[s] = l.Agent
	}
	for s := range m.held {
		holders[s] = m.opts.Agent
	}
	assigned := Assign(slots, agents, holders)

	mine := make(map[string]bool)
	for s := range m.held {
		mine[s.Feed] = true
	}
	for s := range m.freeSince {
		if _, ok := v.leases[s]; ok || !slices.Contains(slots, s) {
			delete(m.freeSince, s)
		}
	}
	graced := now.Sub(m.joined) >= m.tick // peers that started with us are seen
	for _, s := range slots {
		if _, taken := v.leases[s]; taken {
			continue
		}
		if _, ok := m.freeSince[s]; !ok {
			m.freeSince[s] = now
		}
		orphan := now.Sub(m.freeSince[s]) >= m.ttl
		if mine[s.Feed] || !(orphan || graced && assigned[s] == m.opts.Agent) {
			continue
		}
		if m.acquire(ctx, s, orphan) {
			mine[s.Feed] = true
		}
	}

	releasing := false
	for _, h := range m.held {
		releasing = releasing || h.releasing
	}
	for _, s := range m.heldSlots() {
		h := m.held[s]
		if h.releasing {
			continue
		}
		if n, ok := feeds[s.Feed]; !ok || s.N >= n {
			m.release(s, "no longer configured here")
			continue
		}
		to := assigned[s]
		if !releasing && to != "" && to != m.opts.Agent && now.Sub(m.lastRelease) >= m.tick {
			m.release(s, "handing over to "+to)
			releasing = true
		}
	}
}

// acquire takes a free slot: it reads the feed's position first, so that
// the feed starts where its last holder left it.
func (m *Manager) acquire(ctx context.Context, s Slot, orphan bool) bool {
	from, err := m.position(ctx, s.Feed)
	if err != nil {
		m.log.Warn("cluster: cannot read a feed's position; not taking it yet", "feed", s.Feed, "error", err)
		return false
	}
	h := &holding{since: time.Now(), from: from}
	h.renewed = time.Now()
	rev, err := m.leases.Create(ctx, leaseKey(s), m.leaseValue(h))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return false // another agent was quicker
	case err != nil:
		m.log.Warn("cluster: cannot take a lease", "feed", s.Feed, "replica", s.N, "error", err)
		return false
	}
	h.rev = rev
	m.held[s] = h
	m.count(ChangeAcquired)
	m.log.Info("cluster: lease acquired; starting the feed here", "feed", s.Feed, "replica", s.N,
		"resume_from_kv", from != nil, "orphaned", orphan)
	return true
}

// position reads a feed's stored position; nil if none.
func (m *Manager) position(ctx context.Context, feed string) (sluice.Position, error) {
	e, err := m.pos.Get(ctx, positionKey(feed))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	p, err := decodeValue[storedPosition](e.Value())
	if err != nil {
		m.log.Error("cluster: a feed's stored position is unreadable; it resumes from this agent's own", "feed", feed, "error", err)
		return nil, nil
	}
	return p.Position, nil
}

// release starts handing a slot over: its feed stops first; then
// finishReleases stores its position and gives the lease back.
func (m *Manager) release(s Slot, why string) {
	h := m.held[s]
	h.releasing = true
	m.mu.Lock()
	h.gen = m.wantGen + 1 // the want that handOver publishes next leaves it out
	m.mu.Unlock()
	m.lastRelease = time.Now()
	m.log.Info("cluster: releasing a lease", "feed", s.Feed, "replica", s.N, "reason", why)
}

// finishReleases gives back the leases whose feeds have stopped, after
// storing their positions.
func (m *Manager) finishReleases(ctx context.Context) {
	m.mu.Lock()
	applied := m.appliedGen
	m.mu.Unlock()
	for _, s := range m.heldSlots() {
		h := m.held[s]
		if !h.releasing || applied < h.gen {
			continue
		}
		m.storePosition(ctx, s.Feed, true)
		err := m.leases.Delete(ctx, leaseKey(s), jetstream.LastRevision(h.rev))
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			m.log.Warn("cluster: cannot give back a lease; trying again", "feed", s.Feed, "error", err)
			continue
		}
		delete(m.held, s)
		m.count(ChangeReleased)
		m.log.Info("cluster: lease released", "feed", s.Feed, "replica", s.N)
	}
}

// storePositions stores the settled positions of the feeds held here
// that moved since they were last stored.
func (m *Manager) storePositions(ctx context.Context, final bool) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout())
	defer cancel()
	done := make(map[string]bool)
	for _, s := range m.heldSlots() {
		if !done[s.Feed] {
			done[s.Feed] = true
			m.storePosition(ctx, s.Feed, final)
		}
	}
}

func (m *Manager) storePosition(ctx context.Context, feed string, final bool) {
	p := m.host.Settled(feed)
	if p == nil || bytes.Equal(p, m.written[feed]) {
		return
	}
	_, err := m.pos.Put(ctx, positionKey(feed), encodeValue(storedPosition{Position: p, Agent: m.opts.Agent, At: time.Now().UTC()}))
	if err != nil {
		if final {
			m.log.Warn("cluster: cannot store a feed's position; its next holder resumes from an earlier one and sends the rest again", "feed", feed, "error", err)
		}
		return
	}
	m.written[feed] = p
}

// handOver gives the applier the feeds this agent should run, if they
// changed.
func (m *Manager) handOver() {
	want := make(map[string]sluice.Position)
	for s, h := range m.held {
		if !h.releasing {
			want[s.Feed] = h.from
		}
	}
	names := slices.Sorted(maps.Keys(want))
	if slices.Equal(names, m.handed) {
		return
	}
	m.handed = names
	m.mu.Lock()
	m.want, m.wantGen = want, m.wantGen+1
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// applyLoop runs the feeds handOver names, one want at a time, newest
// first, until ctx ends.
func (m *Manager) applyLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		m.mu.Lock()
		want, gen, applied := m.want, m.wantGen, m.appliedGen
		m.mu.Unlock()
		if gen == applied {
			continue
		}
		if err := m.host.Run(want); err != nil {
			m.log.Debug("cluster: the agent did not change its feeds", "error", err)
			continue
		}
		m.mu.Lock()
		m.appliedGen = gen
		m.mu.Unlock()
		select {
		case m.applied <- struct{}{}:
		default:
		}
	}
}

// Leave stores the final positions of the feeds held here, gives back
// their leases and the agent's presence, and closes the connection. The
// agent's feeds must have stopped.
func (m *Manager) Leave(ctx context.Context) {
	if m.nc == nil {
		return
	}
	defer m.nc.Close()
	if m.nc.IsConnected() {
		m.storePositions(ctx, true)
		for _, s := range m.heldSlots() {
			dctx, cancel := context.WithTimeout(ctx, m.timeout())
			err := m.leases.Delete(dctx, leaseKey(s), jetstream.LastRevision(m.held[s].rev))
			cancel()
			if err != nil {
				m.log.Warn("cluster: cannot give back a lease; it expires within the lease TTL", "feed", s.Feed, "error", err)
				continue
			}
			delete(m.held, s)
			m.count(ChangeReleased)
		}
		if !m.joined.IsZero() {
			dctx, cancel := context.WithTimeout(ctx, m.timeout())
			m.leases.Delete(dctx, agentKey(m.opts.Agent), jetstream.LastRevision(m.presenceRev))
			cancel()
		}
		m.log.Info("cluster: left; the feeds held here move to the other agents")
	}
	m.held = map[Slot]*holding{}
	m.setState(StateLeft, nil)
	m.publish(false)
}

func (m *Manager) heldSlots() []Slot {
	return slices.SortedFunc(maps.Keys(m.held), compareSlots)
}

func (m *Manager) presenceValue() []byte {
	return encodeValue(presence{Agent: m.opts.Agent, Instance: m.instance, Since: m.since.UTC(),
		Feeds: slices.Sorted(maps.Keys(m.host.Feeds()))})
}

func (m *Manager) leaseValue(h *holding) []byte {
	return encodeValue(lease{Agent: m.opts.Agent, Instance: m.instance, Since: h.since.UTC()})
}
