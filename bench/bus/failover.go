package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/cluster"
	"github.com/sluicehq/sluice/bench/internal/harness"
)

const (
	failoverStream = "FAILOVER"
	failoverFeed   = "fo"
	failoverRate   = 1000
	failoverAgents = 3
)

// arrival is a message of the failover feed as the harness saw it: when
// it saw it, and when the plugin made the point.
type arrival struct {
	at, made time.Time
}

// arrivals records what reaches the server: every publish (a core
// subscription sees re-sent points too, which the stream then drops as
// duplicates), and every message the stream stores (with its stored
// time).
type arrivals struct {
	mu        sync.Mutex
	published []arrival
	stored    []arrival
}

func made(h nats.Header) time.Time {
	ns, err := strconv.ParseInt(h.Get("Sluice-Received"), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// firstAfter is the first arrival of a point made after t.
func firstAfter(s []arrival, t time.Time) (arrival, bool) {
	for _, a := range s {
		if a.made.After(t) {
			return a, true
		}
	}
	return arrival{}, false
}

type trial struct {
	holder                  string
	running, sent, firstNew time.Duration
	overlap                 int // points re-sent: made after the kill, already stored
}

func (b *bench) failover(trials int) (string, error) {
	ctx := context.Background()
	if err := b.freshNATS(""); err != nil {
		return "", err
	}
	feeds := filepath.Join(b.dir, "feeds")
	if err := os.MkdirAll(feeds, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(feeds, failoverFeed+".yaml"), []byte(fmt.Sprintf(`feeds:
  %s:
    plugin: synth
    sinks: [bus]
    config: {symbols: [FAILOVER], rate: %d}
`, failoverFeed, failoverRate)), 0o644); err != nil {
		return "", err
	}
	var seen arrivals
	sub, err := b.nc.Subscribe("failover.>", func(m *nats.Msg) {
		now := time.Now()
		seen.mu.Lock()
		seen.published = append(seen.published, arrival{now, made(m.Header)})
		seen.mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	defer sub.Unsubscribe()

	agents := make([]*harness.Proc, failoverAgents)
	configs := make([]harness.AgentSpec, failoverAgents)
	defer func() {
		for _, a := range agents {
			if a != nil {
				a.Stop()
			}
		}
	}()
	for i := range agents {
		configs[i], err = writeConfig(b.bins, filepath.Join(b.dir, fmt.Sprintf("agent-%d", i+1)), feeds, fmt.Sprintf(`cluster: {url: %q, name: bench, agent: agent-%d, lease_ttl: %s}
sinks:
  bus: {type: nats, url: %q, stream: %s, subject: "failover.{measurement}.{symbol}", create_stream: true}
`, b.nats.url, i+1, b.leaseTTL, b.nats.url, failoverStream))
		if err != nil {
			return "", err
		}
		if agents[i], err = harness.StartAgent(configs[i]); err != nil {
			return "", err
		}
	}
	holder := func(skip int) int {
		for i, a := range agents {
			if i == skip {
				continue
			}
			if st, ok := a.Status(); ok && slices.ContainsFunc(st.Feeds, func(f agent.FeedStatus) bool {
				return f.Name == failoverFeed && f.State == agent.FeedRunning
			}) {
				return i
			}
		}
		return -1
	}
	active := func(a *harness.Proc) bool {
		st, ok := a.Status()
		return ok && st.Cluster != nil && st.Cluster.State == cluster.StateActive
	}
	if err := waitUntil(time.Minute, func() bool {
		return holder(-1) >= 0 && active(agents[0]) && active(agents[1]) && active(agents[2])
	}); err != nil {
		return "", fmt.Errorf("the feed did not run in the cluster: %w; agent-1 log:\n%s", err, agents[0].LogTail())
	}
	var stream jetstream.Stream
	if err := waitUntil(30*time.Second, func() bool { stream, err = b.js.Stream(ctx, failoverStream); return err == nil }); err != nil {
		return "", fmt.Errorf("no stream %s: %w", failoverStream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return "", err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		seen.mu.Lock()
		seen.stored = append(seen.stored, arrival{md.Timestamp, made(m.Headers())})
		seen.mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	defer cc.Stop()

	var results []trial
	for range trials {
		// The feed runs a while, so that its position is stored (at most
		// once a second) and the kill falls anywhere in a renewal.
		time.Sleep(2*time.Second + time.Duration(len(results))*377*time.Millisecond%(b.leaseTTL/4))
		h := holder(-1)
		if h < 0 {
			return "", fmt.Errorf("no agent runs the feed")
		}
		killed := time.Now()
		agents[h].Kill()
		var tr trial
		tr.holder = fmt.Sprintf("agent-%d", h+1)
		if err := waitUntil(4*b.leaseTTL+30*time.Second, func() bool { return holder(h) >= 0 }); err != nil {
			return "", fmt.Errorf("the feed did not move after agent-%d was killed: %w", h+1, err)
		}
		tr.running = time.Since(killed)
		var sent, stored arrival
		if err := waitUntil(30*time.Second, func() bool {
			seen.mu.Lock()
			defer seen.mu.Unlock()
			var ok1, ok2 bool
			sent, ok1 = firstAfter(seen.published, killed)
			stored, ok2 = firstAfter(seen.stored, killed)
			return ok1 && ok2
		}); err != nil {
			return "", fmt.Errorf("no new point after the move: %w", err)
		}
		tr.sent, tr.firstNew = sent.at.Sub(killed), stored.at.Sub(killed)
		seen.mu.Lock()
		for _, p := range seen.published {
			if p.made.After(killed) && p.at.Before(stored.at) {
				tr.overlap++
			}
		}
		seen.mu.Unlock()
		fmt.Fprintf(os.Stderr, "failover trial %d: %s killed; running elsewhere %s, first point sent %s, first new point stored %s\n",
			len(results)+1, tr.holder, tr.running.Round(time.Millisecond), tr.sent.Round(time.Millisecond), tr.firstNew.Round(time.Millisecond))
		results = append(results, tr)
		// The killed agent comes back (and takes nothing: the holder
		// keeps the feed).
		if agents[h], err = harness.StartAgent(configs[h]); err != nil {
			return "", err
		}
		if err := waitUntil(time.Minute, func() bool { return active(agents[h]) }); err != nil {
			return "", fmt.Errorf("agent-%d did not rejoin: %w", h+1, err)
		}
	}

	var rep strings.Builder
	fmt.Fprintf(&rep, "Three agents (`cluster:` with `lease_ttl: %s`, every other key default) share one feeds directory holding one synth feed (%d points/s) into the nats sink (stream %s). Each trial kills -9 the agent running the feed, then measures from the kill: until the feed runs on another agent (its status, polled every 20 ms), until that agent's first point reaches nats-server (a plain subscription in the harness sees every publish), and until the first new point is stored in the stream (an ordered consumer; the points before it are the ones the new holder sends again from the stored position, which the stream drops as duplicates). The killed agent is started again before the next trial.\n\n", b.leaseTTL, failoverRate, failoverStream)
	fmt.Fprintf(&rep, "| trial | killed | running elsewhere | first point sent | first new point stored | points sent again first |\n|---|---|---|---|---|---|\n")
	var run, snt, nw []time.Duration
	for i, tr := range results {
		fmt.Fprintf(&rep, "| %d | %s | %s | %s | %s | %d |\n", i+1, tr.holder, ms(tr.running), ms(tr.sent), ms(tr.firstNew), tr.overlap)
		run, snt, nw = append(run, tr.running), append(snt, tr.sent), append(nw, tr.firstNew)
	}
	med := func(s []time.Duration) time.Duration { slices.Sort(s); return s[len(s)/2] }
	fmt.Fprintf(&rep, "| **median** | | **%s** | **%s** | **%s** | |\n\n", ms(med(run)), ms(med(snt)), ms(med(nw)))
	fmt.Fprintf(&rep, "The documented bound for a feed to run elsewhere is `lease_ttl` and a quarter (%s) plus the plugin's start.\n", b.leaseTTL+b.leaseTTL/4)
	return rep.String(), nil
}
