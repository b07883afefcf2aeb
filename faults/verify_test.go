package faults

// The end of every scenario: let the market run on without faults so that
// every hole shows, halt it, wait (bounded) for the sinks to catch up,
// stop the agent, and compare each sink with the ground truth.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
)

// settle is how long the market runs after the last fault: every symbol
// trades again, so the feed sees every hole (a hole is noticed on the
// next live id) and backfills it.
var settle = pick(2500*time.Millisecond, 5*time.Second)

// reconnectTimeout bounds the wait for the feed to be connected before
// the market settles: the plugin's reconnect backoff reaches 30s, and a
// refused handshake waits for Retry-After.
const reconnectTimeout = 90 * time.Second

// landTimeout bounds the wait for the sinks to hold everything.
var landTimeout = pick(90*time.Second, 180*time.Second)

// sinkCheck is one sink to verify and what it is allowed to lose.
type sinkCheck struct {
	store store
	// drops: the sink is under a drop policy. It must then miss exactly
	// what the agent counted as dropped; the complete sink named by ref
	// holds everything the feed delivered (the feed_events points too).
	drops bool
	ref   store
}

// scenario is one fault-injection run: the exchange, the agent, the
// sinks, and the fault schedule the test function drives.
type scenario struct {
	t       *testing.T
	name    string
	began   time.Time
	x       *exchange
	a       *agentRig
	checks  []sinkCheck
	results []result
}

// finish ends the scenario and asserts on what landed.
func (s *scenario) finish() {
	t := s.t
	t.Helper()
	s.quiet()
	s.x.halt()
	gen := s.x.generated()
	s.waitLanded(gen)
	final, _ := s.a.poll()
	s.a.stop()
	elapsed := time.Since(s.began)
	f := feedStatus(final)
	xs := s.x.Stats()
	t.Logf("last run of %d: feed points %d, restarts %d, gaps %d, backfilled %d, plugin_dropped %d; exchange: %d connections, %d dropped by faults, %d REST requests",
		len(s.a.runs), f.Points, f.Restarts, f.Gaps, f.BackfilledPoints, f.PluginDropped, xs.Accepted, xs.Dropped, xs.REST)

	var failed []string
	for _, c := range s.checks {
		r, problems := s.verify(c, gen)
		r.Elapsed = elapsed
		s.results = append(s.results, r)
		failed = append(failed, problems...)
	}
	record(s.results...)
	t.Logf("%s:\n%s", s.name, formatResults(s.results))
	for _, f := range failed {
		t.Error(f)
	}
}

// quiet lets the market trade for settle with the feed connected and its
// plugin running throughout: a hole is only noticed on the next live id
// of its symbol, so a plugin (re)started or reconnected just before the
// market halts would never see what it has to backfill. A connection
// opened during the settle (the last fault of a schedule closing one as
// the settle begins, the plugin then waiting out its backoff) settles
// again.
func (s *scenario) quiet() {
	t := s.t
	t.Helper()
	for range 10 {
		deadline := time.Now().Add(reconnectTimeout)
		for !s.x.subscribed() || feedStatus(s.a.last).State != agent.FeedRunning {
			if time.Now().After(deadline) {
				t.Fatalf("the feed did not run connected to the exchange within %s; exchange %+v, status %s",
					reconnectTimeout, s.x.Stats(), statusJSON(s.a.last))
			}
			s.a.sleep(5 * pollEvery)
		}
		before, conns := feedStatus(s.a.last), s.x.Stats().Accepted
		s.a.sleep(settle)
		after := feedStatus(s.a.last)
		if after.Restarts == before.Restarts && after.Pid == before.Pid && after.State == agent.FeedRunning &&
			s.x.Stats().Accepted == conns && s.x.subscribed() {
			return
		}
		t.Logf("the plugin restarted or reconnected while the market settled (%d → %d restarts, %d → %d connections); settling again",
			before.Restarts, after.Restarts, conns, s.x.Stats().Accepted)
	}
	t.Fatalf("the plugin kept restarting; status %s", statusJSON(s.a.last))
}

// landedCount returns the distinct ids a sink holds over every symbol
// and stream, and whether that is at least what the exchange generated
// for each.
func landedCount(t *testing.T, st store, gen map[string]map[string]truth) (int64, bool) {
	var n int64
	all := true
	for _, sm := range streams {
		got := st.distinct(t, sm.table, sm.id)
		for _, sym := range symbols {
			n += got[sym]
			all = all && got[sym] >= gen[sm.name][sym].count()
		}
	}
	return n, all
}

// idleLimit ends the wait for the sinks early: the market is halted, so
// when nothing is buffered for any sink and no sink gained an id for this
// long, what is missing will stay missing. It is longer than a REST
// weight window (a minute), which a backfill may have to wait out.
var idleLimit = pick(20*time.Second, 70*time.Second)

// waitLanded waits until every complete sink holds everything and every
// drop-policy sink has written all it was given; a timeout is not fatal:
// the comparison then says what is missing.
func (s *scenario) waitLanded(gen map[string]map[string]truth) {
	t := s.t
	deadline := time.Now().Add(landTimeout)
	var landed int64
	moved := time.Now()
	for {
		done, idle := true, true
		st, ok := s.a.poll()
		sum := int64(0)
		for _, c := range s.checks {
			ss, found := sinkStatus(st, c.store.sink())
			idle = idle && ok && found && ss.BufferedPoints == 0
			if c.drops {
				done = done && ok && found && ss.BufferedPoints == 0 && ss.State == "ok"
				continue
			}
			n, all := landedCount(t, c.store, gen)
			sum += n
			done = done && all
		}
		if done {
			return
		}
		if sum != landed || !idle {
			landed, moved = sum, time.Now()
		}
		if time.Since(moved) > idleLimit {
			t.Logf("the sinks are idle and gained nothing for %s; comparing what landed", idleLimit)
			return
		}
		if s.a.exited() {
			t.Fatalf("sluice exited (%v) while the sinks caught up", s.a.proc.ExitErr())
		}
		if time.Now().After(deadline) {
			t.Errorf("the sinks did not catch up within %s; status: %s", landTimeout, statusJSON(st))
			return
		}
		time.Sleep(5 * pollEvery)
	}
}

// verify compares one sink with the ground truth.
func (s *scenario) verify(c sinkCheck, gen map[string]map[string]truth) (result, []string) {
	t := s.t
	r := result{Scenario: s.name, Sink: c.store.sink(), Dropped: s.a.dropped(c.store.sink())}
	var problems []string
	for _, sm := range streams {
		for _, sym := range symbols {
			tr := gen[sm.name][sym]
			ids := c.store.ids(t, sm.table, sm.id, sym)
			var landed, dup, unexpected int64
			var stray, dups []int64
			for id, n := range ids {
				if id < tr.first || id > tr.last {
					unexpected++
					stray = append(stray, id)
					continue
				}
				landed++
				dup += n - 1
				if n > 1 {
					dups = append(dups, id)
				}
			}
			missing := tr.count() - landed
			r.Generated += tr.count()
			r.Landed += landed
			r.Missing += missing
			r.Duplicated += dup
			r.Unexpected += unexpected
			where := fmt.Sprintf("%s: sink %s, %s %s (ids %d..%d)", s.name, c.store.sink(), sym, sm.name, tr.first, tr.last)
			if missing > 0 {
				msg := fmt.Sprintf("%s: %d of %d missing: %s", where, missing, tr.count(), missingRanges(ids, tr))
				if c.drops {
					t.Log(msg) // accounted for below
				} else {
					problems = append(problems, msg)
				}
			}
			if dup > 0 {
				slices.Sort(dups)
				problems = append(problems, fmt.Sprintf("%s: %d duplicate rows over %d ids, e.g. id %d: %s", where, dup, len(dups), dups[0],
					c.store.show(t, sm.table, sm.id, sym, dups[0])))
			}
			if unexpected > 0 {
				slices.Sort(stray)
				problems = append(problems, fmt.Sprintf("%s: %d ids the exchange never generated, e.g. %v", where, unexpected, stray[:min(len(stray), 10)]))
			}
		}
	}
	if !c.drops {
		if r.Dropped != 0 {
			problems = append(problems, fmt.Sprintf("%s: sink %s counted %d drops under a policy that must not drop", s.name, r.Sink, r.Dropped))
		}
		return r, problems
	}
	// Under a drop policy the feed_events points are dropped like any
	// other: the complete sink says how many the feed delivered.
	want, got := c.ref.rows(t, eventsTable), c.store.rows(t, eventsTable)
	r.Generated += want
	r.Landed += got
	r.Missing += want - got
	switch {
	case r.Dropped == 0:
		problems = append(problems, fmt.Sprintf("%s: sink %s dropped nothing: the outage never filled its buffer, the test proved nothing", s.name, r.Sink))
	case r.Missing != r.Dropped:
		problems = append(problems, fmt.Sprintf("%s: sink %s is missing %d points (%d of them feed_events: %d delivered, %d landed) but the agent counted %d dropped",
			s.name, r.Sink, r.Missing, want-got, want, got, r.Dropped))
	}
	return r, problems
}

// missingRanges lists the ids of tr absent from ids as ranges, the first
// few of them.
func missingRanges(ids map[int64]int64, tr truth) string {
	const show = 12
	var out []string
	n := 0
	for id := tr.first; id <= tr.last; id++ {
		if ids[id] > 0 {
			continue
		}
		from := id
		for id+1 <= tr.last && ids[id+1] == 0 {
			id++
		}
		n++
		if len(out) < show {
			if from == id {
				out = append(out, fmt.Sprint(from))
			} else {
				out = append(out, fmt.Sprintf("%d-%d", from, id))
			}
		}
	}
	if n > show {
		out = append(out, fmt.Sprintf("... (%d ranges)", n))
	}
	return strings.Join(out, " ")
}

// sinkState is a sink's state in a status snapshot.
func sinkState(st agent.Status, name string) string {
	ss, _ := sinkStatus(st, name)
	return string(ss.State)
}
