package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func feedsN(n int) map[string]int {
	m := make(map[string]int, n)
	for i := range n {
		m[fmt.Sprintf("f%d", i+1)] = 1
	}
	return m
}

// every configures each agent with every feed of feeds.
func every(feeds map[string]int, agents ...string) map[string][]string {
	names := slices.Sorted(maps.Keys(feeds))
	m := make(map[string][]string, len(agents))
	for _, a := range agents {
		m[a] = names
	}
	return m
}

func perAgent(assigned map[Slot]string) map[string]int {
	n := make(map[string]int)
	for _, a := range assigned {
		n[a]++
	}
	return n
}

func TestAssignSpreadsEvenly(t *testing.T) {
	feeds := feedsN(6)
	got := Assign(Slots(feeds), every(feeds, "a", "b", "c"), nil)
	if len(got) != 6 {
		t.Fatalf("assigned %d of 6 slots: %v", len(got), got)
	}
	for a, n := range perAgent(got) {
		if n != 2 {
			t.Errorf("agent %s gets %d slots, want 2: %v", a, n, got)
		}
	}
	// The same view gives the same answer, whatever the map order.
	for range 20 {
		if again := Assign(Slots(feeds), every(feeds, "c", "a", "b"), nil); !maps.Equal(again, got) {
			t.Fatalf("assignment changed: %v, then %v", got, again)
		}
	}
}

// An agent that dies gives up its slots to the others, who keep theirs;
// one that joins takes only its share, from those over the bound.
func TestAssignMovesOnlyWhatMust(t *testing.T) {
	feeds := feedsN(6)
	three := Assign(Slots(feeds), every(feeds, "a", "b", "c"), nil)

	two := Assign(Slots(feeds), every(feeds, "a", "b"), three)
	for s, h := range three {
		if h != "c" && two[s] != h {
			t.Errorf("slot %s moved from %s to %s when c died", s, h, two[s])
		}
	}
	if n := perAgent(two); n["a"] != 3 || n["b"] != 3 {
		t.Errorf("after c died: %v", n)
	}

	back := Assign(Slots(feeds), every(feeds, "a", "b", "c"), two)
	moved := 0
	for s, h := range two {
		if back[s] != h {
			moved++
			if back[s] != "c" {
				t.Errorf("slot %s moved from %s to %s, not to the agent that joined", s, h, back[s])
			}
		}
	}
	if n := perAgent(back); moved != 2 || n["a"] != 2 || n["b"] != 2 || n["c"] != 2 {
		t.Errorf("after c joined again: %d moved, %v", moved, n)
	}
}

func TestAssignReplicasAndConfiguredFeeds(t *testing.T) {
	feeds := map[string]int{"hot": 3, "cold": 1, "only-b": 1}
	agents := map[string][]string{
		"a": {"cold", "hot"},
		"b": {"cold", "hot", "only-b"},
	}
	got := Assign(Slots(feeds), agents, nil)
	if _, ok := got[Slot{"hot", 2}]; ok {
		t.Errorf("a third replica of hot on two agents: %v", got)
	}
	if got[Slot{"hot", 0}] == got[Slot{"hot", 1}] || got[Slot{"hot", 0}] == "" || got[Slot{"hot", 1}] == "" {
		t.Errorf("the two replicas of hot: %v", got)
	}
	if got[Slot{"only-b", 0}] != "b" {
		t.Errorf("only-b went to %q, the only agent configured with it is b", got[Slot{"only-b", 0}])
	}
	// A holder that is not configured with the feed (any more) does not
	// keep it.
	got = Assign(Slots(feeds), agents, map[Slot]string{{"only-b", 0}: "a"})
	if got[Slot{"only-b", 0}] != "b" {
		t.Errorf("only-b held by a: assigned to %q", got[Slot{"only-b", 0}])
	}
	if got := Assign(Slots(feeds), nil, nil); len(got) != 0 {
		t.Errorf("no agents: %v", got)
	}
}

// Whatever the view: each slot goes to an agent configured with its
// feed, no agent gets two replicas of a feed, and where every agent can
// take every feed, every replica that fits is placed, and with one
// replica per feed none gets more than its share.
func TestAssignInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		nf, na := 1+rng.IntN(12), 1+rng.IntN(6)
		feeds := make(map[string]int)
		for f := range nf {
			feeds[fmt.Sprintf("f%d", f)] = 1 + rng.IntN(3)
		}
		agents := make(map[string][]string)
		full := rng.IntN(2) == 0
		single := rng.IntN(2) == 0 // one replica each: the bound is strict
		if single {
			for f := range feeds {
				feeds[f] = 1
			}
		}
		for a := range na {
			var mine []string
			for f := range feeds {
				if full || rng.IntN(3) > 0 {
					mine = append(mine, f)
				}
			}
			agents[fmt.Sprintf("a%d", a)] = mine
		}
		holders := make(map[Slot]string)
		for _, s := range Slots(feeds) {
			if rng.IntN(2) == 0 {
				holders[s] = fmt.Sprintf("a%d", rng.IntN(na+1)) // some held by an agent now gone
			}
		}
		got := Assign(Slots(feeds), agents, holders)
		assignable := 0
		for _, r := range feeds {
			assignable += min(r, na)
		}
		bound := (assignable + na - 1) / na
		seen := make(map[string]bool)
		for s, a := range got {
			if !slices.Contains(agents[a], s.Feed) {
				t.Fatalf("case %d: %s assigned to %s, not configured with it", i, s, a)
			}
			if seen[a+"/"+s.Feed] {
				t.Fatalf("case %d: %s has two replicas of %s", i, a, s.Feed)
			}
			seen[a+"/"+s.Feed] = true
		}
		if full {
			for a, n := range perAgent(got) {
				if single && n > bound {
					t.Fatalf("case %d: %s got %d slots, bound %d", i, a, n, bound)
				}
			}
			if len(got) != assignable {
				t.Fatalf("case %d: %d slots assigned, want %d", i, len(got), assignable)
			}
		}
	}
}
