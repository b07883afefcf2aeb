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
// A released point that could not be emitted (the host's queue was full)
// is handed back with requeue: its id becomes a hole like any other, and
// the points released after it wait in pending again.
//
// An idSeq is owned by one goroutine.
type idSeq struct {
	last       int64 // every id <= last is done; meaningful once started
	started    bool
	pending    []pendingPoint // ascending id, all > last+1
	maxPending int
	overflow   int64 // ids not kept because pending was full
	// owed is the highest id handed back by requeue (0: none). While it
	// is past last, ids last+1..owed are a hole even with nothing
	// pending: they are known to exist.
	owed int64
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
	switch {
	case len(s.pending) > 0:
		return s.last + 1, s.pending[0].id - 1, true
	case s.owed > s.last:
		return s.last + 1, s.owed, true
	}
	return 0, 0, false
}

// owing reports whether an id handed back by requeue is still missing:
// neither offered again nor given up.
func (s *idSeq) owing() bool { return s.owed > s.last }

// requeue hands back points that offer released but that could not be
// emitted: unsent are the points of ids from..last, in id order, as offer
// released them (the caller emitted those before from). From becomes
// missing, a hole that pending does not need to show, and the points
// after it wait in pending for it, so nothing past the hole goes out
// before it and nothing is emitted twice.
func (s *idSeq) requeue(from int64, unsent []sluice.Point) {
	if !s.started || from > s.last || int64(len(unsent)) != s.last-from+1 {
		panic("idSeq.requeue: points that were not the last released")
	}
	back := make([]pendingPoint, 0, len(unsent)-1+len(s.pending))
	for i := 1; i < len(unsent); i++ {
		back = append(back, pendingPoint{from + int64(i), unsent[i]})
	}
	s.pending = append(back, s.pending...)
	s.last = from - 1
	s.owed = max(s.owed, from)
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
