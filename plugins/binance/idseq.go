package binance

import (
	"slices"

	"github.com/sluicehq/sluice"
)

// idSeq keeps the trade (or aggregate trade) ids of one symbol contiguous
// on the way out. Ids arrive from live connections, possibly twice (two
// connections overlap during a handover) or out of order (from two
// connections), and from REST backfill. A point is released only when
// every id before it has been released or given up, so the position
// (last) never passes a hole: a restart resumes, and backfills, from the
// first id that was not emitted.
//
// An id past a hole waits in pending, in id order, for the hole to fill.
// pending is bounded: past maxPending an id is not kept, and becomes part
// of a later hole, to be backfilled in turn.
//
// An idSeq is owned by one goroutine.
type idSeq struct {
	last       int64 // every id <= last is done; meaningful once started
	started    bool
	pending    []pendingPoint // ascending id, all > last+1
	maxPending int
	overflow   int64 // ids not kept because pending was full
}

type pendingPoint struct {
	id int64
	p  sluice.Point
}

// offerResult says what became of an offered id.
type offerResult uint8

const (
	offerReleased  offerResult = iota // released, maybe with pending points after it
	offerDuplicate                    // at or before last, or already pending
	offerPending                      // past a hole: waits
	offerDropped                      // past a hole and pending is full
)

// offer takes one id and its point, and appends to ready the points that
// can be emitted now, in id order.
func (s *idSeq) offer(id int64, p sluice.Point, ready []sluice.Point) ([]sluice.Point, offerResult) {
	if !s.started {
		// The first id of a feed without a resume position: nothing
		// before it is owed.
		s.started, s.last = true, id
		return append(ready, p), offerReleased
	}
	switch {
	case id <= s.last:
		return ready, offerDuplicate
	case id == s.last+1:
		s.last = id
		ready = append(ready, p)
		return s.drain(ready), offerReleased
	}
	i, found := slices.BinarySearchFunc(s.pending, id, func(x pendingPoint, id int64) int {
		switch {
		case x.id < id:
			return -1
		case x.id > id:
			return 1
		}
		return 0
	})
	if found {
		return ready, offerDuplicate
	}
	if len(s.pending) >= s.maxPending {
		s.overflow++
		return ready, offerDropped
	}
	s.pending = slices.Insert(s.pending, i, pendingPoint{id, p})
	return ready, offerPending
}

// drain releases the pending points that now follow last.
func (s *idSeq) drain(ready []sluice.Point) []sluice.Point {
	k := 0
	for k < len(s.pending) && s.pending[k].id <= s.last+1 {
		if s.pending[k].id == s.last+1 {
			s.last++
			ready = append(ready, s.pending[k].p)
		}
		k++
	}
	if k > 0 {
		clear(s.pending[:k])
		s.pending = s.pending[k:]
		if len(s.pending) == 0 {
			s.pending = nil // let the backing array go
		}
	}
	return ready
}

// hole returns the first missing range [from, to], if any.
func (s *idSeq) hole() (from, to int64, ok bool) {
	if len(s.pending) == 0 {
		return 0, 0, false
	}
	return s.last + 1, s.pending[0].id - 1, true
}

// skipTo gives up every id up to and including id, releasing the pending
// points that then follow. It returns how many ids were given up.
func (s *idSeq) skipTo(id int64, ready []sluice.Point) ([]sluice.Point, int64) {
	if !s.started || id <= s.last {
		return ready, 0
	}
	// Pending points at or before id are kept: they are real trades.
	lost := id - s.last
	k := 0
	for k < len(s.pending) && s.pending[k].id <= id {
		ready = append(ready, s.pending[k].p)
		lost--
		k++
	}
	if k > 0 {
		clear(s.pending[:k])
		s.pending = s.pending[k:]
	}
	s.last = id
	return s.drain(ready), lost
}

// resume starts the sequence at a stored position: id is done.
func (s *idSeq) resume(id int64) {
	s.started, s.last = true, id
}
