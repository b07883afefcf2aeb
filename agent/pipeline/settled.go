package pipeline

import (
	"slices"

	"github.com/sluicehq/sluice"
)

// Settled returns a feed's settled position (nil if none) and the
// sequence number of the entry it came with: the newest position below
// which every sink the feed goes to has written, dropped by its policy,
// or kept apart all of the feed's entries. Unlike Position, no entry
// before it waits in a log. The position returned is the caller's.
func (b *Buffer) Settled(feed string) (sluice.Position, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fs := b.feeds[feed]; fs != nil {
		return slices.Clone(fs.settled.Position), fs.settled.Seq
	}
	return nil, 0
}

// Appended returns the sequence number of a feed's newest entry (0 if
// none): a settled position with a higher one came from an entry
// appended since.
func (b *Buffer) Appended(feed string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fs := b.feeds[feed]; fs != nil {
		return fs.seq
	}
	return 0
}
