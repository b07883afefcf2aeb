package cluster

import (
	"maps"
	"slices"
	"time"
)

// State is where an agent stands in its cluster.
type State string

const (
	StateConnecting   State = "connecting"   // the servers could not be reached yet (see Error); no feed runs
	StateJoining      State = "joining"      // waiting for an earlier run's presence to expire
	StateActive       State = "active"       // announced, renewing, taking and handing over feeds
	StateDisconnected State = "disconnected" // the servers stopped answering; feeds stop as their leases near expiry
	StateConflict     State = "conflict"     // another running agent has this agent's name
	StateLeft         State = "left"         // the agent stopped and gave its leases back
)

// Kinds of lease changes, as counted.
const (
	ChangeAcquired = "acquired" // a free lease taken: its feed started here
	ChangeReleased = "released" // a lease given back: handed over, or the agent stopped
	ChangeLost     = "lost"     // a lease found taken by another agent, or not renewed in time: its feed stopped here
)

// Status is an agent's view of its cluster.
type Status struct {
	Cluster         string  `json:"cluster"`
	Agent           string  `json:"agent"`
	State           State   `json:"state"`
	Error           string  `json:"error,omitempty"`
	LeaseTTLSeconds float64 `json:"lease_ttl_seconds"`
	// Agents are the live agents the bucket showed at Checked.
	Agents []string `json:"agents"`
	// Held counts the feeds this agent holds a lease for.
	Held int `json:"held"`
	// Leases is every configured feed's replica slots: who holds each.
	Leases []LeaseStatus `json:"leases"`
	// Changes counts lease changes by kind (ChangeAcquired, ...).
	Changes map[string]uint64 `json:"lease_changes"`
	Checked time.Time         `json:"checked,omitzero"`
}

// LeaseStatus is one slot of a feed.
type LeaseStatus struct {
	Feed    string `json:"feed"`
	Replica int    `json:"replica"`
	// Holder is the agent holding the slot; "" when it is free.
	Holder string `json:"holder,omitempty"`
	// State is held (here), releasing (here, handing over), elsewhere
	// (held by another agent) or free.
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
}

// Lease states.
const (
	LeaseHeld      = "held"
	LeaseReleasing = "releasing"
	LeaseElsewhere = "elsewhere"
	LeaseFree      = "free"
)

// Status returns a snapshot of the agent's view of its cluster.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Agents = slices.Clone(m.st.Agents)
	st.Leases = slices.Clone(m.st.Leases)
	st.Changes = maps.Clone(m.st.Changes)
	return st
}

func (m *Manager) setState(s State, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.State, m.st.Error = s, ""
	if err != nil {
		m.st.Error = err.Error()
	}
}

func (m *Manager) count(change string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Changes[change]++
}

// publish updates the status from the bucket as last read and what this
// agent holds; active marks the agent active (the step went well).
func (m *Manager) publish(active bool) {
	feeds := m.host.Feeds()
	var leases []LeaseStatus
	for _, s := range Slots(feeds) {
		ls := LeaseStatus{Feed: s.Feed, Replica: s.N, State: LeaseFree}
		if h, ok := m.held[s]; ok {
			ls.Holder, ls.State, ls.Since = m.opts.Agent, LeaseHeld, h.since
			if h.releasing {
				ls.State = LeaseReleasing
			}
		} else if l, ok := m.last.leases[s]; ok {
			ls.Holder, ls.State, ls.Since = l.Agent, LeaseElsewhere, l.Since
		}
		leases = append(leases, ls)
	}
	held := make(map[string]bool)
	for s := range m.held {
		held[s.Feed] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Leases, m.st.Held = leases, len(held)
	if active {
		m.st.Agents, m.st.Checked = slices.Sorted(maps.Keys(m.last.agents)), time.Now()
		m.st.State, m.st.Error = StateActive, ""
	}
}
