package cluster

import (
	"cmp"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
)

// Assign says which agent should hold each slot. agents maps each live
// agent to the feeds it is configured with; holders maps held slots to
// their holders. Every agent computes it from the same view of the
// leases bucket, so they agree without talking to each other.
//
// No agent gets two replicas of one feed, nor a feed it is not
// configured with. Each agent gets at most ceil(slots / agents) slots
// while another can take the slot (with replicas, placing every replica
// may take one more). A holder keeps its slots up to that
// bound, those it ranks highest first; the rest go, in slot order, to
// the highest-ranked agent with room. An agent's rank for a slot is a
// hash of the two (rendezvous hashing), so when an agent comes or goes
// only the slots it gains or loses move. A slot no agent can take is
// left out.
func Assign(slots []Slot, agents map[string][]string, holders map[Slot]string) map[Slot]string {
	out := make(map[Slot]string, len(slots))
	if len(agents) == 0 {
		return out
	}
	names := slices.Sorted(maps.Keys(agents))
	can := make(map[string]map[string]bool, len(agents))
	for _, a := range names {
		can[a] = make(map[string]bool, len(agents[a]))
		for _, f := range agents[a] {
			can[a][f] = true
		}
	}
	// The bound shares out the slots some agent can take: a third
	// replica among two agents does not count.
	assignable := 0
	for _, s := range slots {
		n := 0
		for _, a := range names {
			if can[a][s.Feed] {
				n++
			}
		}
		if s.N < n {
			assignable++
		}
	}
	bound := (assignable + len(agents) - 1) / len(agents)
	count := make(map[string]int, len(agents))
	has := make(map[string]map[string]bool, len(agents)) // agent → feeds it got
	give := func(s Slot, a string) {
		out[s] = a
		count[a]++
		if has[a] == nil {
			has[a] = make(map[string]bool)
		}
		has[a][s.Feed] = true
	}
	ordered := slices.SortedFunc(slices.Values(slots), compareSlots)

	// Holders keep what they may, best ranked first.
	kept := make(map[string][]Slot)
	for _, s := range ordered {
		if h, ok := holders[s]; ok && can[h][s.Feed] {
			kept[h] = append(kept[h], s)
		}
	}
	for _, h := range names {
		held := kept[h]
		slices.SortStableFunc(held, func(x, y Slot) int { return cmp.Compare(rank(h, y), rank(h, x)) })
		for _, s := range held {
			if count[h] < bound && !has[h][s.Feed] {
				give(s, h)
			}
		}
	}
	// The rest, to the best ranked with room; failing that, to the best
	// ranked that can take it at all.
	for _, s := range ordered {
		if _, done := out[s]; done {
			continue
		}
		ranked := slices.Clone(names)
		slices.SortStableFunc(ranked, func(x, y string) int { return cmp.Compare(rank(y, s), rank(x, s)) })
		best := ""
		for _, a := range ranked {
			if !can[a][s.Feed] || has[a][s.Feed] {
				continue
			}
			if count[a] < bound {
				best = a
				break
			}
			if best == "" {
				best = a
			}
		}
		if best != "" {
			give(s, best)
		}
	}
	return out
}

func compareSlots(x, y Slot) int {
	return cmp.Or(cmp.Compare(x.Feed, y.Feed), cmp.Compare(x.N, y.N))
}

// rank is agent a's rendezvous weight for slot s.
func rank(a string, s Slot) uint64 {
	h := fnv.New64a()
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(s.Feed))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(s.N)))
	// FNV's low bits mix poorly for short inputs: finish with a
	// multiply-xorshift (splitmix64's).
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Slots lists the slots of feeds, each with its replicas.
func Slots(feeds map[string]int) []Slot {
	var out []Slot
	for f, n := range feeds {
		for i := range max(n, 1) {
			out = append(out, Slot{Feed: f, N: i})
		}
	}
	slices.SortFunc(out, compareSlots)
	return out
}
