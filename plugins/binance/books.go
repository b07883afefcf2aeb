package binance

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/book"
	"github.com/sluicehq/sluice/plugins/binance/rest"
	"github.com/sluicehq/sluice/plugins/binance/wire"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// applyDepth feeds a diff-depth event to its symbol's book. A sequence
// break empties that book alone (the Book keeps the breaking event) and a new
// snapshot is fetched for it: the other symbols go on.
func (r *runner) applyDepth(ev *wire.Event) {
	bs := r.books[ev.Symbol]
	if bs == nil {
		return
	}
	err := bs.book.Apply(&ev.Depth)
	var ge *book.GapError
	switch {
	case errors.As(err, &ge):
		bs.loaded = false
		r.log.Warn("depth sequence break; resyncing the book", "symbol", ev.Symbol, "error", err)
		r.event(sdk.Event{Kind: sdk.EventResync, Symbol: ev.Symbol, Stream: bs.kind.Name, Message: err.Error()})
	case err != nil:
		r.log.Error("depth event rejected", "symbol", ev.Symbol, "error", err)
	}
	r.requestSnapshot(ev.Symbol, bs, r.now())
}

// requestSnapshot queues a REST snapshot for a book that waits for one and
// has buffered an event (so the snapshot can be bridged).
func (r *runner) requestSnapshot(sym string, bs *localBook, now time.Time) {
	if bs.loaded || bs.fetching || now.Before(bs.retryAt) {
		return
	}
	if waiting, _ := bs.book.Buffered(); waiting == 0 {
		return
	}
	select {
	case r.jobs <- restJob{snapshot: true, symbol: sym, book: bs, limit: rest.SnapshotLimit(r.cfg.bookDepth)}:
		bs.fetching = true
	default:
		r.log.Error("REST job queue full; snapshot delayed", "symbol", sym)
	}
}

func (r *runner) scheduleSnapshots(now time.Time) {
	for sym, bs := range r.books {
		r.requestSnapshot(sym, bs, now)
	}
}

// handleSnapshot loads a snapshot. One older than the buffered events is
// fetched again, after a pause that grows with each failure.
func (r *runner) handleSnapshot(res restResult) {
	bs := r.books[res.job.symbol]
	if bs != res.job.book {
		return // the stream was removed by a reconfiguration
	}
	bs.fetching = false
	retry := func() {
		bs.failures++
		d := min(snapshotRetryFirst<<min(bs.failures-1, 10), snapshotRetryMax)
		bs.retryAt = r.now().Add(d)
	}
	if res.err != nil {
		r.log.Warn("depth snapshot failed", "symbol", res.job.symbol, "error", res.err)
		retry()
		return
	}
	if err := bs.book.Snapshot(&res.snap); err != nil {
		r.log.Info("depth snapshot older than the buffered events; fetching another", "symbol", res.job.symbol, "error", err)
		retry()
		return
	}
	bs.loaded, bs.failures = true, 0
	r.log.Debug("depth snapshot loaded", "symbol", res.job.symbol, "last_update_id", res.snap.LastUpdateID)
}

// emitBooks emits the top book_depth levels of every synced book whose
// top book_depth levels changed since they were last emitted. Changes
// deeper in the book, which are most of what the diffs of a busy symbol
// carry, would only write the same levels again under a new time.
func (r *runner) emitBooks() {
	now := r.now()
	for _, bs := range r.books {
		b := bs.book
		if !b.Synced() || !b.ChangedWithin(r.cfg.bookDepth) {
			continue
		}
		r.buf = b.AppendPoints(r.buf[:0], r.cfg.bookDepth, b.Time(), now)
		for i := range r.buf {
			r.emit(r.buf[i])
		}
		clear(r.buf)
		b.ClearChanged()
	}
}
