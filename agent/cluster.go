package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/cluster"
	"github.com/sluicehq/sluice/config"
)

// clusterHost is the agent as its cluster manager sees it: the feeds it
// is configured with, the feed set that runs the ones it holds leases
// for, and the buffer's settled positions.
type clusterHost struct {
	a   *Agent
	r   *running
	log *slog.Logger

	mu sync.Mutex
	// marks holds, per feed, the buffer's newest entry when this agent
	// last started the feed: a settled position from an entry up to it
	// is from an earlier hold, older than what the feed resumed from, and
	// is never stored.
	marks map[string]uint64
}

var _ cluster.Host = (*clusterHost)(nil)

// Feeds is the configured feeds, each with its replicas.
func (h *clusterHost) Feeds() map[string]int {
	cfg := h.r.feeds.config()
	out := make(map[string]int, len(cfg.Feeds))
	for name, f := range cfg.Feeds {
		out[name] = max(f.Replicas, 1)
	}
	return out
}

// Run makes the feed set run the feeds in want, ordered with reloads and
// the agent's stop by reloadMu.
func (h *clusterHost) Run(want map[string]sluice.Position) error {
	h.a.reloadMu.Lock()
	defer h.a.reloadMu.Unlock()
	if h.a.stopping.Load() {
		return ErrStopping
	}
	h.mu.Lock()
	for name := range want {
		if !h.r.feeds.has(name) {
			h.marks[name] = h.r.buf.Appended(name)
		}
	}
	h.mu.Unlock()
	started, stopped := h.r.feeds.Hold(want)
	if len(started) > 0 || len(stopped) > 0 {
		h.log.Info("cluster: feeds changed with the leases held", "started", started, "stopped", stopped)
	}
	return nil
}

// Settled is a feed's settled position, if this run of it produced it.
func (h *clusterHost) Settled(feed string) sluice.Position {
	pos, seq := h.r.buf.Settled(feed)
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq <= h.marks[feed] {
		return nil
	}
	return pos
}

// agentNameRE is what an agent's name may hold: what a feed's may.
var agentNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// clusterAgentName is cluster.agent, or the host name.
func clusterAgentName(cl *config.Cluster) (string, error) {
	if cl.Agent != "" {
		return cl.Agent, nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.agent is not set and the host name is unknown: %w", err)
	}
	if !agentNameRE.MatchString(name) {
		return "", fmt.Errorf("cluster.agent is not set and the host name %q cannot name an agent (letters, digits, '_', '.' and '-'): set cluster.agent", name)
	}
	return name, nil
}

// newClusterManager returns the manager of this agent's part in its
// cluster, running r's feeds.
func (a *Agent) newClusterManager(r *running, name string) *cluster.Manager {
	cl := a.cfg.Cluster
	log := a.log.With("agent", name)
	host := &clusterHost{a: a, r: r, log: log, marks: make(map[string]uint64)}
	return cluster.New(cluster.Options{
		Client: cl.Client(), Cluster: cl.Name, Agent: name,
		LeaseTTL: cl.LeaseTTL, KVReplicas: cl.KVReplicas, Timeout: cl.Timeout, Log: log,
	}, host)
}

// leaveCluster gives back the leases of the stopped feeds, within the
// cluster's timeout a few times over.
func leaveCluster(m *cluster.Manager, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*timeout)
	defer cancel()
	m.Leave(ctx)
}

// clusterReason is /readyz's reason while the agent is not an active
// member of its cluster; "" when it is.
func clusterReason(st *cluster.Status) string {
	if st == nil || st.State == cluster.StateActive {
		return ""
	}
	r := fmt.Sprintf("cluster %s is %s", st.Cluster, st.State)
	if st.Error != "" {
		r += ": " + st.Error
	}
	return r
}
