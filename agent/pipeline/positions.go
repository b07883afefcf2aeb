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
