package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/cluster"
)

func TestFormatCluster(t *testing.T) {
	now := time.Unix(1000, 0)
	st := agent.Status{Cluster: &cluster.Status{
		Cluster: "market", Agent: "rec-1", State: cluster.StateActive, LeaseTTLSeconds: 10,
		Agents: []string{"rec-1", "rec-2"}, Held: 1,
		Changes: map[string]uint64{cluster.ChangeAcquired: 3, cluster.ChangeReleased: 1, cluster.ChangeLost: 1},
		Leases: []cluster.LeaseStatus{
			{Feed: "btc", Replica: 0, Holder: "rec-1", State: cluster.LeaseHeld, Since: now.Add(-90 * time.Second)},
			{Feed: "eth", Replica: 0, Holder: "rec-2", State: cluster.LeaseElsewhere, Since: now.Add(-5 * time.Second)},
			{Feed: "sol", Replica: 0, State: cluster.LeaseFree},
		},
	}}
	var b bytes.Buffer
	formatCluster(&b, st.Cluster, now)
	want := `cluster market: agent rec-1, active; agents: rec-1, rec-2; lease TTL 10s; leases acquired 3, released 1, lost 1
FEED  REPLICA  HOLDER              LEASE      SINCE
btc   0        rec-1 (this agent)  held       90s ago
eth   0        rec-2               elsewhere  5.00s ago
sol   0        -                   free       -

`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if line := formatStatusLine(st); !strings.HasSuffix(line, " | cluster market: active, 1 held") {
		t.Errorf("status line %q", line)
	}
	st.Cluster.State, st.Cluster.Error = cluster.StateConnecting, "connect to nats://n1:4222: connection refused"
	b.Reset()
	formatCluster(&b, st.Cluster, now)
	if !strings.Contains(b.String(), "agent rec-1, connecting;") || !strings.Contains(b.String(), "\n  connect to nats://n1:4222: connection refused\n") {
		t.Errorf("connecting:\n%s", b.String())
	}
	b.Reset()
	formatCluster(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("no cluster: %q", b.String())
	}
}
