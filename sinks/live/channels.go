package live

import (
	"sort"
	"sync"
	"time"

	"github.com/sluicehq/sluice"
)

// maxTrackedChannels bounds the channels the sink keeps figures of (for
// the channel list and the history estimate). Past it, new channels are
// still published, and counted as untracked.
const maxTrackedChannels = 20_000

// maxListed bounds the channels the "channels" RPC answers with.
const maxListed = 2000

// ChannelInfo is one channel as the "channels" RPC lists it.
type ChannelInfo struct {
	Channel     string `json:"channel"`
	Measurement string `json:"measurement"`
	Exchange    string `json:"exchange,omitempty"`
	Market      string `json:"market,omitempty"`
	Symbol      string `json:"symbol,omitempty"`
	LatestOnly  bool   `json:"latest_only,omitempty"`
	// Points is how many points this agent published on it since it
	// started.
	Points uint64 `json:"points"`
	// LastTime is the newest point's event time; LastPublished when this
	// agent published it.
	LastTime      time.Time `json:"last_time"`
	LastPublished time.Time `json:"last_published"`
}

// channelTable keeps figures of the channels published to.
type channelTable struct {
	mu        sync.Mutex
	max       int
	byName    map[string]*ChannelInfo
	untracked uint64
}

func newChannelTable(max int) *channelTable {
	return &channelTable{max: max, byName: make(map[string]*ChannelInfo)}
}

// note records a point published on a channel and returns the channel's
// name, shared with earlier points of it (one string per channel).
func (t *channelTable) note(name string, p *sluice.Point, latest bool, now time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byName[name]
	if !ok {
		if len(t.byName) >= t.max {
			t.untracked++
			return name
		}
		c = &ChannelInfo{Channel: name, Measurement: p.Measurement, LatestOnly: latest}
		c.Exchange, _ = p.Tag("exchange")
		c.Market, _ = p.Tag("market")
		c.Symbol, _ = p.Tag("symbol")
		t.byName[name] = c
	}
	c.Points++
	if p.Time.After(c.LastTime) {
		c.LastTime = p.Time
	}
	c.LastPublished = now
	return c.Channel
}

// latest reports whether a channel keeps its latest point only.
func (t *channelTable) latest(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byName[name]
	return ok && c.LatestOnly
}

// list returns the channels g may subscribe to, busiest first, at most
// limit, leaving out those silent for longer than ttl (their history is
// gone too).
func (t *channelTable) list(g *grant, now time.Time, ttl time.Duration, limit int) []ChannelInfo {
	t.mu.Lock()
	out := make([]ChannelInfo, 0, min(len(t.byName), limit))
	for name, c := range t.byName {
		if now.Sub(c.LastPublished) <= ttl && g.allows(name) {
			out = append(out, *c)
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Points != out[j].Points {
			return out[i].Points > out[j].Points
		}
		return out[i].Channel < out[j].Channel
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// history estimates the points the channels hold for recovery: each
// channel published within ttl holds what this agent published on it, up
// to its size. With Redis other agents add to it; this counts this
// agent's.
func (t *channelTable) history(now time.Time, ttl time.Duration, size int) (channels int, points uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.byName {
		if now.Sub(c.LastPublished) > ttl {
			continue
		}
		channels++
		if c.LatestOnly {
			points++
		} else {
			points += min(c.Points, uint64(size))
		}
	}
	return channels, points
}
