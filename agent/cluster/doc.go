// Package cluster divides a fleet's feeds among its agents through
// JetStream KV leases. Every agent of a cluster (the config's cluster
// section) runs a Manager: it announces the agent, renews the leases the
// agent holds, takes the free feeds the assignment gives it, hands over
// the ones it should no longer run, and keeps each held feed's settled
// position in KV, from which the feed's next holder resumes.
//
// Two buckets hold the cluster's state, sluice_<cluster>_leases and
// sluice_<cluster>_positions. In the leases bucket, whose TTL is the
// lease TTL, "agent.<name>" says an agent is alive (and which feeds it
// is configured with), and "lease.<feed>.<replica>" says who holds one
// replica slot of a feed. A lease is taken with a KV create, which fails
// if the key exists, renewed with an update that names the revision it
// read, and given back with a delete that names it too: of two agents,
// only one ever holds a slot, and a holder learns it lost a slot at its
// next renewal. An agent that cannot renew for three quarters of the
// TTL stops the slot's feed itself, before the lease expires on the
// servers and another agent may take it.
//
// Which agent should run which slot is pure (Assign): rendezvous hashing
// over the live agents configured with the feed, a bound of ceil(slots /
// agents) per agent, and current holders kept within the bound, so that
// an agent joining takes over only as many slots as it should hold, and
// holders hand them over one at a time.
package cluster
