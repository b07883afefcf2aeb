package pipeline

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

// Names is one feed's budget of names: the distinct measurements it may
// write (limits.max_measurements) and the distinct tags plus fields it may
// give each of them (limits.max_columns). Sinks turn names into storage
// (a SQLite table per measurement, a column per tag and field), and a
// remote peer that picks names (a jsonws rule's measurement_path, a
// plugin inventing field names) must not be able to create those without
// bound. A point past either limit is rejected whole, with reason
// too_many_measurements or too_many_columns; the names already admitted
// keep flowing.
//
// The agent keeps one Names per feed for as long as the feed is
// configured, across plugin restarts and reloads; it starts empty when
// the agent starts. Measurements the plugin declares at configure time
// are admitted whatever the count: they come from code or the operator's
// config, not from the wire. Column names are kept as 64-bit hashes, so
// a full budget costs a few MiB at most whatever the names' lengths (a
// collision, about one in 2^64 per pair, would let one column through
// uncounted).
//
// Normalize and Declare may be called from different goroutines (a live
// reconfiguration declares while the feed delivers).
type Names struct {
	maxMeasurements, maxColumns int
	seed                        maphash.Seed

	mu sync.Mutex // held by Normalize for a whole batch
	ms map[string]*columns

	// The previous point's measurement and keys, all admitted: most
	// points have the shape of the one before and skip the hashing.
	last      *columns
	lastM     string
	lastTags  []sluice.Tag
	lastField []sluice.Field
}

// columns is what Names knows of one measurement.
type columns struct {
	seen map[uint64]struct{} // hashes of its tag and field keys, by role
}

// tagSalt keeps a tag and a field of one name apart: sinks give them a
// column each.
const tagSalt = 0x9e3779b97f4a7c15

// NewNames returns an empty budget for limits; a limit of 0 is none.
func NewNames(limits config.Limits) *Names {
	return &Names{
		maxMeasurements: limits.MaxMeasurements,
		maxColumns:      limits.MaxColumns,
		seed:            maphash.MakeSeed(),
		ms:              make(map[string]*columns),
	}
}

// Declare admits the measurements a plugin declared at configure time.
func (n *Names) Declare(ms []sluice.Measurement) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range ms {
		if m.Name != "" && n.ms[m.Name] == nil {
			n.ms[strings.Clone(m.Name)] = &columns{seen: make(map[uint64]struct{})}
		}
	}
}

// Measurements is how many measurements the feed has been admitted.
func (n *Names) Measurements() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.ms)
}

// admit charges a valid point's names to the budget, or says why not.
// n.mu is held.
func (n *Names) admit(p *sluice.Point) (Rejection, bool) {
	if n.last != nil && p.Measurement == n.lastM && sameKeys(p, n.lastTags, n.lastField) {
		return Rejection{}, true
	}
	c := n.ms[p.Measurement]
	if c == nil && n.maxMeasurements > 0 && len(n.ms) >= n.maxMeasurements {
		return Rejection{Reason: ReasonTooManyMeasurements, Detail: fmt.Sprintf(
			"measurement %q: the feed already writes %d measurements, the limit (limits.max_measurements)",
			p.Measurement, len(n.ms))}, false
	}
	known := 0
	if c != nil {
		known = len(c.seen)
	}
	// Count first, so that a refused point leaves nothing behind.
	var buf [16]uint64
	fresh := buf[:0]
	for _, t := range p.Tags {
		if h := maphash.String(n.seed, t.Key) ^ tagSalt; !c.has(h) {
			fresh = append(fresh, h)
		}
	}
	for _, f := range p.Fields {
		if h := maphash.String(n.seed, f.Key); !c.has(h) {
			fresh = append(fresh, h)
		}
	}
	if n.maxColumns > 0 && known+len(fresh) > n.maxColumns {
		return Rejection{Reason: ReasonTooManyColumns, Detail: fmt.Sprintf(
			"measurement %q: %d new tags and fields would make %d, over the limit of %d (limits.max_columns)",
			p.Measurement, len(fresh), known+len(fresh), n.maxColumns)}, false
	}
	if c == nil {
		c = &columns{seen: make(map[uint64]struct{}, len(fresh))}
		n.ms[strings.Clone(p.Measurement)] = c
	}
	for _, h := range fresh {
		c.seen[h] = struct{}{}
	}
	n.last, n.lastM, n.lastTags, n.lastField = c, p.Measurement, p.Tags, p.Fields
	return Rejection{}, true
}

// forgetLast drops the references to the batch's points, whose memory
// the buffer may reuse.
func (n *Names) forgetLast() {
	n.last, n.lastM, n.lastTags, n.lastField = nil, "", nil, nil
}

func (c *columns) has(h uint64) bool {
	if c == nil {
		return false
	}
	_, ok := c.seen[h]
	return ok
}

// sameKeys reports whether p has exactly these tag and field keys, in
// this order.
func sameKeys(p *sluice.Point, tags []sluice.Tag, fields []sluice.Field) bool {
	if len(p.Tags) != len(tags) || len(p.Fields) != len(fields) {
		return false
	}
	for i := range tags {
		if p.Tags[i].Key != tags[i].Key {
			return false
		}
	}
	for i := range fields {
		if p.Fields[i].Key != fields[i].Key {
			return false
		}
	}
	return true
}
