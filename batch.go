package sluice

// Position is an opaque, source-defined marker of how far a feed has got
// (for example the last trade id per symbol). The agent stores the latest
// position it has durably received and hands it back when the feed starts
// again, so the source can resume, and backfill what it missed, from there.
type Position []byte

// Batch is what a source delivers in one message: points in order, a
// count of points it had to drop since the previous batch, and the
// position that covers every point up to and including this batch (nil
// when the position has not moved).
type Batch struct {
	Points   []Point
	Dropped  uint64
	Position Position
}
