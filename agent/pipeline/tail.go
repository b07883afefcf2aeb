package pipeline

import (
	"sync"

	"github.com/sluicehq/sluice"
)

// tailPoints is the most points the tail keeps: a few batches of an
// output that writes as soon as its sink is free.
const tailPoints = 8192

// tail keeps the points of the newest buffer entries as they were
// appended, so that an output that keeps up takes them from memory
// instead of decoding the record it reads back. The output still reads
// every record from the log, in order and checksummed: the tail only
// saves the decode. An entry goes once every output has read past it
// (trim), or, when one lags, once the tail holds more than max points,
// oldest first. Entries' points are shared by every output that takes
// them and must not be written to.
type tail struct {
	mu     sync.Mutex
	max    int
	points int
	byIdx  map[uint64][]sluice.Point
	order  []uint64 // indexes, oldest first
}

func newTail(max int) *tail {
	return &tail{max: max, byIdx: make(map[uint64][]sluice.Point)}
}

// add keeps the points of the entry at idx.
func (t *tail) add(idx uint64, ps []sluice.Point) {
	if len(ps) == 0 || len(ps) > t.max {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byIdx[idx] = ps
	t.order = append(t.order, idx)
	t.points += len(ps)
	for t.points > t.max {
		old := t.order[0]
		t.order = t.order[1:]
		t.points -= len(t.byIdx[old])
		delete(t.byIdx, old)
	}
}

// trim lets go of the entries before index below.
func (t *tail) trim(below uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.order) > 0 && t.order[0] < below {
		t.points -= len(t.byIdx[t.order[0]])
		delete(t.byIdx, t.order[0])
		t.order = t.order[1:]
	}
}

// get returns the points of the entry at idx if the tail still has them
// and they are the n the record says it holds.
func (t *tail) get(idx uint64, n int) ([]sluice.Point, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps, ok := t.byIdx[idx]
	return ps, ok && len(ps) == n
}
