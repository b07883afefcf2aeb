package binance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// reconfReq hands a validated config to the runner's goroutine.
type reconfReq struct {
	cfg   *settings
	reply chan error // capacity 1
}

// errRunEnded: the run a config was handed to has ended.
var errRunEnded = errors.New("binance: the run has ended")

// reconfigure applies cfg to the running feed. It returns
// sdk.ErrRestartNeeded (wrapped) for a change that cannot be applied
// live, errRunEnded if the run is over, and nil once the change is in
// force: the streams' state is set up and their subscriptions are queued
// on their connections, which make them in the background, paced.
func (r *runner) reconfigure(ctx context.Context, cfg *settings) error {
	req := reconfReq{cfg: cfg, reply: make(chan error, 1)}
	select {
	case r.reconf <- req:
	case <-r.done:
		return errRunEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	// Applying does not wait on the network: no need to watch ctx.
	select {
	case err := <-req.reply:
		return err
	case <-r.done:
		return errRunEnded
	}
}

// apply makes cfg the config in force, on the runner's goroutine: removed
// streams are unsubscribed and forgotten (their ids kept in the
// position), added ones get their state and are subscribed on a shard
// with room or on a new connection, and a shard left without streams is
// closed.
func (r *runner) apply(cfg *settings) error {
	if why := restartReason(r.cfg, cfg); why != "" {
		return fmt.Errorf("%w: %s", sdk.ErrRestartNeeded, why)
	}
	want := map[string]bool{}
	for _, sym := range cfg.symbols {
		for _, k := range cfg.kinds {
			want[streamName(sym, k)] = true
		}
	}
	ops := map[*shard]*subOp{}
	opOf := func(sh *shard) *subOp {
		if ops[sh] == nil {
			ops[sh] = &subOp{}
		}
		return ops[sh]
	}

	var removed, added int
	for _, name := range r.names {
		if want[name] {
			continue
		}
		st := r.streams[name]
		r.removeStream(name, st)
		op := opOf(st.shard) // every shard has started: run starts them before it applies configs
		op.unsub = append(op.unsub, name)
		removed++
	}
	r.names = slices.DeleteFunc(r.names, func(name string) bool { return !want[name] })

	prev := r.cfg
	r.cfg = cfg
	for _, sym := range cfg.symbols {
		for _, k := range cfg.kinds {
			name := streamName(sym, k)
			if r.streams[name] != nil {
				continue
			}
			sh := r.shardFor(k)
			sh.planned++
			if sh.cancel != nil {
				op := opOf(sh)
				op.sub = append(op.sub, name)
			} else {
				sh.streams = append(sh.streams, name)
			}
			r.addStream(sym, k, sh)
			r.streams[name].lastSeen = r.now()
			added++
		}
	}
	slices.Sort(r.names)

	var closed, opened int
	r.shards = slices.DeleteFunc(r.shards, func(sh *shard) bool {
		if sh.planned > 0 {
			return false
		}
		if sh.cancel != nil {
			sh.cancel() // its supervisor closes the connection
			closed++
		}
		return true
	})
	for _, sh := range r.shards {
		switch {
		case sh.cancel == nil:
			r.startShard(sh)
			opened++
		case ops[sh] != nil:
			sh.push(*ops[sh])
		}
	}
	r.tickBooks(prev)

	if removed+added > 0 || closed+opened > 0 {
		msg := fmt.Sprintf("config applied live: %d streams added, %d removed; %d connections opened, %d closed; %d streams on %d connections",
			added, removed, opened, closed, len(r.streams), len(r.shards))
		r.log.Info("reconfigured", "added", added, "removed", removed, "opened", opened, "closed", closed,
			"streams", len(r.streams), "connections", len(r.shards))
		r.event(sdk.Event{Kind: sdk.EventReconfigure, Message: msg})
	} else {
		r.log.Info("reconfigured; the streams are unchanged")
	}
	return nil
}

// removeStream forgets a stream: its clock, and its id sequence (whose
// id is carried in the position, to resume from if it comes back) or its
// book. Frames of it still in flight are dropped.
func (r *runner) removeStream(name string, st *streamState) {
	if !st.staleSince.IsZero() {
		r.live(name, st, "unsubscribed")
	}
	delete(r.streams, name)
	r.gone[name] = true
	st.shard.planned--
	switch st.kind.class {
	case classTrade:
		r.dropSeq(r.trades, r.carried.Trade, st.symbol)
	case classAggTrade:
		r.dropSeq(r.aggs, r.carried.AggTrade, st.symbol)
	case classDepth:
		delete(r.books, st.symbol)
	}
}

// dropSeq forgets a symbol's id sequence, carrying its position. Ids held
// past a hole go with it: the position stops before the hole, so a later
// return of the symbol backfills them.
func (r *runner) dropSeq(seqs map[string]*tradeSeq, carried map[string]int64, sym string) {
	if s := seqs[sym]; s != nil && s.started {
		carried[sym] = s.last
	}
	delete(seqs, sym)
}

// shardFor returns a shard on k's route with room for one more stream,
// the first such, or a new one (not started yet).
func (r *runner) shardFor(k streamKind) *shard {
	route := ""
	if r.base.wsRoutes {
		route = "/market"
		if k.publicRoute() {
			route = "/public"
		}
	}
	for _, sh := range r.shards {
		if sh.route == route && sh.planned < r.base.perConn {
			return sh
		}
	}
	sh := newShard(r.nextShard, route)
	r.nextShard++
	r.shards = append(r.shards, sh)
	return sh
}

// startShard starts sh's supervisor, which runs until the run ends or the
// shard is closed (sh.cancel).
func (r *runner) startShard(sh *shard) {
	ctx, cancel := context.WithCancel(r.runCtx)
	sh.cancel = cancel
	r.wg.Go(func() { r.supervise(ctx, sh) })
}

// tickBooks keeps the book ticker in step with the books and
// book_interval: running while there are books, at the interval in
// force. prev is the config the ticker was set for (nil: none yet).
func (r *runner) tickBooks(prev *settings) {
	switch {
	case len(r.books) == 0 && r.bookTick != nil:
		r.bookTick.Stop()
		r.bookTick = nil
	case len(r.books) > 0 && r.bookTick == nil:
		r.bookTick = time.NewTicker(r.cfg.bookInterval)
	case len(r.books) > 0 && (prev == nil || prev.bookInterval != r.cfg.bookInterval):
		r.bookTick.Reset(r.cfg.bookInterval)
	}
}

// restartReason says why next cannot replace cur in a running feed, or
// returns "" if it can. What can change live: symbols, streams,
// stale_after, book_interval, book_depth, max_backfill and queue_wait. The rest is
// read by the connections and the REST client, which keep the config
// they started with.
func restartReason(cur, next *settings) string {
	var keys []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"feed name", cur.feed != next.feed},
		{"market", cur.market != next.market},
		{"testnet", cur.testnet != next.testnet},
		{"ws_url", cur.wsURL != next.wsURL || cur.wsRoutes != next.wsRoutes},
		{"rest_url", cur.restURL != next.restURL},
		{"rotate_after", cur.rotateAfter != next.rotateAfter},
		{"streams_per_connection", cur.perConn != next.perConn},
		{"rest_weight_limit", cur.weightLimit != next.weightLimit},
		{"api_key", cur.apiKey != next.apiKey},
	} {
		if c.changed {
			keys = append(keys, c.key)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	return strings.Join(keys, ", ") + " changed; only symbols, streams, stale_after, book_interval, book_depth, max_backfill and queue_wait apply to a running feed"
}
