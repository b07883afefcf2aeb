package binance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/binance/rest"
	"github.com/sluicehq/sluice/plugins/binance/wire"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// restJob is one REST request the runner wants: a depth snapshot, or one
// page of trades or aggTrades from an id.
type restJob struct {
	snapshot bool
	symbol   string
	book     *localBook // snapshot: the book it is for
	limit    int        // snapshot: the levels to ask for
	seq      *tradeSeq  // backfill: the sequence it is for
	class    kindClass  // backfill: classTrade or classAggTrade
	from, to int64      // backfill: the hole
	cutoff   time.Time  // backfill: ids older than this are given up (zero: none)
}

// restResult is a job's answer.
type restResult struct {
	job    restJob
	snap   market.DepthSnapshot
	points []sluice.Point
	ids    []int64
	// lostTo, when > 0, gives up ids up to it: they are older than the
	// cutoff.
	lostTo int64
	err    error
}

// restWorker runs the REST jobs one at a time, so that the weight gate
// sees them in order, until ctx ends.
func (r *runner) restWorker(ctx context.Context) {
	p := wire.NewParser(r.base.market)
	for {
		var j restJob
		select {
		case j = <-r.jobs:
		case <-ctx.Done():
			return
		}
		res := restResult{job: j}
		if j.snapshot {
			res.snap, res.err = r.rest.Snapshot(ctx, j.symbol, j.limit)
		} else {
			res = r.fetchPage(ctx, p, j)
		}
		select {
		case r.results <- res:
		case <-ctx.Done():
			return
		}
	}
}

// fetchPage gets one page of the hole from j.from. When the page starts
// before the age cutoff, it looks up the first id at the cutoff and gives
// up what lies before it.
func (r *runner) fetchPage(ctx context.Context, p *wire.Parser, j restJob) restResult {
	res := restResult{job: j}
	res.points, res.ids, res.err = r.rest.TradesFrom(ctx, p, endpointOf(j.class), j.symbol, j.from)
	if res.err != nil || j.cutoff.IsZero() || len(res.points) == 0 || !res.points[0].Time.Before(j.cutoff) {
		return res
	}
	// The hole reaches back past max_backfill.age. aggTrades finds an id
	// by time (trades cannot): the first aggregate trade of the hour
	// after the cutoff, whose first trade id serves the trade stream.
	end := time.UnixMilli(min(j.cutoff.UnixMilli()+time.Hour.Milliseconds()-1, r.now().UnixMilli()))
	aggPts, aggIDs, err := r.rest.FirstAggTrade(ctx, p, j.symbol, j.cutoff, end)
	switch {
	case err != nil:
		res.err = err
		return res
	case len(aggIDs) > 0:
		first := aggIDs[0]
		if j.class == classTrade {
			v, _ := aggPts[0].Field("first_trade_id")
			first = v.Int()
		}
		res.lostTo = first - 1
	default:
		// Nothing traded in the hour after the cutoff: give up this
		// page's old ids and look again from the next.
		for i, pt := range res.points {
			if pt.Time.Before(j.cutoff) {
				res.lostTo = res.ids[i]
			}
		}
	}
	res.lostTo = min(res.lostTo, j.to)
	k := 0
	for k < len(res.ids) && res.ids[k] <= res.lostTo {
		k++
	}
	res.points, res.ids = res.points[k:], res.ids[k:]
	return res
}

// endpointOf is the REST endpoint that backfills a stream class.
func endpointOf(class kindClass) string {
	if class == classAggTrade {
		return rest.AggTrades
	}
	return rest.HistoricalTrades
}

// scheduleBackfills starts a REST page for every hole that has outlived
// the grace period (a hole may only be two connections out of step) and
// has none in flight, after applying max_backfill.count.
func (r *runner) scheduleBackfills(ctx context.Context, now time.Time) error {
	for _, seqs := range []map[string]*tradeSeq{r.trades, r.aggs} {
		for _, s := range seqs {
			if err := r.scheduleBackfill(ctx, s, now); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *runner) scheduleBackfill(ctx context.Context, s *tradeSeq, now time.Time) error {
	from, to, ok := s.hole()
	if !ok || s.inFlight || now.Before(s.retryAt) {
		return nil
	}
	if s.gap == nil {
		// The grace is for two connections out of step; a hole the
		// host's queue made is known at once.
		if now.Sub(s.gapSince) < r.gapGrace && !s.owing() {
			return nil
		}
		s.gap = &gapRecord{from: from, to: to}
		r.log.Warn("trade ids missing", "symbol", s.symbol, "stream", s.kind.Name, "from_id", from, "to_id", to, "count", to-from+1)
		r.event(sdk.Event{Kind: sdk.EventGap, Symbol: s.symbol, Stream: s.kind.Name, Count: to - from + 1, FromID: from, ToID: to,
			Message: fmt.Sprintf("%d ids missing", to-from+1)})
	}
	switch n := r.cfg.backfillCount; {
	case n == 0:
		return r.giveUp(ctx, s, to, "backfill is off (max_backfill.count is 0)")
	case to-from+1 > n:
		if err := r.giveUp(ctx, s, to-n, fmt.Sprintf("the gap is longer than max_backfill.count (%d)", n)); err != nil {
			return err
		}
		if from, to, ok = s.hole(); !ok {
			return nil
		}
	}
	j := restJob{symbol: s.symbol, seq: s, class: s.kind.class, from: from, to: to}
	if age := r.cfg.backfillAge; age > 0 {
		j.cutoff = now.Add(-age)
	}
	select {
	case r.jobs <- j:
		s.inFlight = true
	default:
		// Only after a reconfiguration to more symbols than the queue
		// was sized for (at most one job per sequence and book is
		// queued): the next housekeeping tries again.
		r.log.Error("REST job queue full; backfill delayed", "symbol", s.symbol, "stream", s.kind.Name)
	}
	return nil
}

// handleBackfill takes one page: it gives up what is too old or gone from
// Binance's history, emits the rest in id order and asks for the next page
// while the hole lasts.
func (r *runner) handleBackfill(ctx context.Context, res restResult) error {
	s := res.job.seq
	if !r.current(s) {
		return nil // the stream was removed by a reconfiguration
	}
	s.inFlight = false
	now := r.now()
	if res.err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *rest.Error
		if errors.As(res.err, &re) && re.Permanent() {
			r.event(sdk.Event{Kind: sdk.EventServerError, Symbol: s.symbol, Stream: s.kind.Name, Message: "backfill: " + res.err.Error()})
			return r.giveUp(ctx, s, res.job.to, "REST refused the backfill: "+res.err.Error())
		}
		s.failures++
		if s.overflow > 0 && s.failures >= maxBackfillFailures {
			// Live ids are being dropped while REST keeps failing: let
			// the live stream through rather than hold it for REST.
			r.event(sdk.Event{Kind: sdk.EventServerError, Symbol: s.symbol, Stream: s.kind.Name, Message: "backfill: " + res.err.Error()})
			return r.giveUp(ctx, s, res.job.to, fmt.Sprintf("REST backfill failed %d times in a row: %v", s.failures, res.err))
		}
		r.log.Warn("backfill page failed; retrying", "symbol", s.symbol, "stream", s.kind.Name, "error", res.err, "retry_in", backfillRetry.String())
		s.retryAt = now.Add(backfillRetry)
		return nil
	}
	s.failures = 0
	if res.lostTo > 0 {
		if err := r.giveUp(ctx, s, res.lostTo, fmt.Sprintf("older than max_backfill.age (%v)", r.cfg.backfillAge)); err != nil {
			return err
		}
	}
	if len(res.ids) == 0 {
		if res.lostTo > 0 {
			return r.scheduleBackfill(ctx, s, now)
		}
		// REST does not have the ids yet (it can trail the stream) or
		// any more: try again a few times, then give up.
		if s.emptyPages++; s.emptyPages >= maxEmptyPages {
			return r.giveUp(ctx, s, res.job.to, fmt.Sprintf("REST returned no trades from id %d", res.job.from))
		}
		s.retryAt = now.Add(emptyPageRetry)
		return nil
	}
	s.emptyPages = 0
	if first := res.ids[0]; first > s.last+1 {
		// Binance's REST history no longer reaches back to the hole.
		if err := r.giveUp(ctx, s, min(first-1, res.job.to), "no longer in Binance's REST history"); err != nil {
			return err
		}
	}
	for i, id := range res.ids {
		if err := r.offer(ctx, s, id, res.points[i], true); err != nil {
			return err
		}
	}
	return r.scheduleBackfill(ctx, s, now)
}

// current reports whether s is still its symbol's sequence of its kind.
func (r *runner) current(s *tradeSeq) bool {
	seqs := r.trades
	if s.kind.class == classAggTrade {
		seqs = r.aggs
	}
	return seqs[s.symbol] == s
}

func (r *runner) handleResult(ctx context.Context, res restResult) error {
	if res.job.snapshot {
		r.handleSnapshot(res)
		return nil
	}
	return r.handleBackfill(ctx, res)
}
