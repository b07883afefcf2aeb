package pipeline

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/internal/capread"

	"github.com/sluicehq/sluice"
)

// positionAt is a feed's position as of the entry with sequence number
// Seq (entries of a feed are numbered from 1 in append order; 0 is
// "before any entry").
type positionAt struct {
	Seq      uint64          `json:"seq"`
	Position sluice.Position `json:"position,omitempty"`
}

// newer returns whichever of p and q comes from the later entry.
func (p positionAt) newer(q positionAt) positionAt {
	if q.Seq > p.Seq {
		return q
	}
	return p
}

// feedState is what the buffer knows of one feed. Its memory does not
// depend on how much of the feed is buffered.
type feedState struct {
	// appendMu makes the feed's appends one at a time, so that its entries
	// reach every sink's log in the order of their sequence numbers.
	appendMu sync.Mutex

	// Guarded by Buffer.mu.
	seq    uint64     // of the newest entry appended
	newest positionAt // the newest position appended: where the feed resumes
	// settled is the newest position below which every entry has been
	// written, dropped by policy or kept apart by every sink it went to.
	settled positionAt
	// rewinds are the times the feed resumed from behind a position some
	// sink held, oldest first (see rewind).
	rewinds []rewind
}

// rewind is a start at which a feed resumed from an older position than
// a sink held, because another sink lacked the entries after it. The
// source sends those entries again, and they are numbered after every
// earlier entry: until one of them brings a position, a position that
// came with an entry numbered in (From, Seq] is ahead of what every sink
// holds, though it may be the newest a sink's log holds by number. Such a
// position counts as Position, numbered Seq (cap).
type rewind struct {
	From     uint64          `json:"from"` // the entry Position came with
	Seq      uint64          `json:"seq"`  // the feed's newest entry at the start
	Position sluice.Position `json:"position,omitempty"`
}

// cap returns p, or where the feed went back to if p came from before.
func (r rewind) cap(p positionAt) positionAt {
	if p.Seq > r.From && p.Seq <= r.Seq {
		return positionAt{Seq: r.Seq, Position: r.Position}
	}
	return p
}

// capRewinds applies every rewind of a feed to p, oldest first.
func capRewinds(rs []rewind, p positionAt) positionAt {
	for _, r := range rs {
		p = r.cap(p)
	}
	return p
}

// positionsFile is positions.json: what must survive when every sink's
// log has let go of the entries that carried it.
type positionsFile struct {
	Version int `json:"version"`
	// Seq is, per feed, the sequence number of its newest entry, so that
	// numbering goes on after the logs let go of every entry.
	Seq map[string]uint64 `json:"seq"`
	// Settled is, per feed, the newest position every sink has passed.
	Settled map[string]positionAt `json:"settled"`
	// Written is, per sink and feed, the newest position of the entries
	// that sink has passed: a sink whose log no longer holds a feed's
	// entries still bounds where the feed may resume.
	Written map[string]map[string]positionAt `json:"written"`
	// Rewinds is, per feed, the starts that resumed from behind a
	// position some sink held, while positions from before them may
	// still be read (see rewind).
	Rewinds map[string][]rewind `json:"rewinds,omitempty"`
}

const positionsVersion = 2

// readPositions reads positions.json. A file from before per-sink logs
// (a map of feed to {index, position}) is read as settled positions.
func readPositions(path string) (positionsFile, error) {
	empty := positionsFile{Seq: map[string]uint64{}, Settled: map[string]positionAt{}, Written: map[string]map[string]positionAt{}}
	pf, err := parsePositions(path)
	if err != nil {
		return empty, err
	}
	return pf, nil
}

func parsePositions(path string) (positionsFile, error) {
	pf := positionsFile{Seq: map[string]uint64{}, Settled: map[string]positionAt{}, Written: map[string]map[string]positionAt{}}
	raw, err := readState(path)
	if err != nil {
		return pf, err
	}
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return pf, fmt.Errorf("%s: %w", path, err)
	}
	if probe.Version == 0 {
		var old map[string]struct {
			Position sluice.Position `json:"position"`
		}
		if err := json.Unmarshal(raw, &old); err != nil {
			return pf, fmt.Errorf("%s: %w", path, err)
		}
		for feed, p := range old {
			pf.Settled[feed] = positionAt{Position: p.Position}
		}
		return pf, nil
	}
	if err := json.Unmarshal(raw, &pf); err != nil {
		return pf, fmt.Errorf("%s: %w", path, err)
	}
	if pf.Seq == nil {
		pf.Seq = map[string]uint64{}
	}
	if pf.Settled == nil {
		pf.Settled = map[string]positionAt{}
	}
	if pf.Written == nil {
		pf.Written = map[string]map[string]positionAt{}
	}
	return pf, nil
}

// maxStateFileBytes caps what the buffer reads of its own small state
// files (positions, measurements): a damaged file must not take the
// agent's memory with it.
const maxStateFileBytes = 64 << 20

// readState reads one of the buffer's state files.
func readState(path string) ([]byte, error) {
	return capread.File(path, maxStateFileBytes, "a buffer state file")
}
