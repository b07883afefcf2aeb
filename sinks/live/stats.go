package live

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"

	"github.com/sluicehq/sluice/sinks"
)

// rateWindow is the span the per-second rates in Stats are taken over.
const rateWindow = 5 * time.Second

// stats are the sink's counters.
type stats struct {
	published, publishedBytes atomic.Uint64
	suppressed, rejected      atomic.Uint64
	sentMessages, sentBytes   atomic.Uint64

	mu          sync.Mutex
	disconnects map[string]uint64 // by reason
	refused     map[string]uint64 // by reason
	samples     []rateSample      // the last rateWindow, oldest first
}

type rateSample struct {
	at                                  time.Time
	pubs, pubBytes, sentMsgs, sentBytes uint64
}

// refuse counts a refused connection, subscription or request.
func (st *stats) refuse(reason string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refused == nil {
		st.refused = make(map[string]uint64)
	}
	st.refused[reason]++
}

// disconnected counts a client gone, by the reason the protocol gives
// ("slow", "no_pong", "connection_closed", ...): a fixed set of words.
func (st *stats) disconnected(d centrifuge.Disconnect) {
	reason := disconnectReason(d)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.disconnects == nil {
		st.disconnects = make(map[string]uint64)
	}
	st.disconnects[reason]++
}

// disconnectReason is a label for a disconnect: the protocol's reason in
// snake case, or the code's class for codes we did not name.
func disconnectReason(d centrifuge.Disconnect) string {
	r := strings.Map(func(c rune) rune {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			return c
		case 'A' <= c && c <= 'Z':
			return c + 'a' - 'A'
		case c == ' ' || c == '_' || c == '-':
			return '_'
		}
		return -1
	}, d.Reason)
	if r == "" || len(r) > 32 {
		return "other"
	}
	return r
}

// sampleRates takes a sample every second until ctx ends.
func (st *stats) sampleRates(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st.sample(now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (st *stats) sample(at time.Time) {
	s := rateSample{at: at, pubs: st.published.Load(), pubBytes: st.publishedBytes.Load(),
		sentMsgs: st.sentMessages.Load(), sentBytes: st.sentBytes.Load()}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.samples = append(st.samples, s)
	for len(st.samples) > 2 && at.Sub(st.samples[1].at) >= rateWindow {
		st.samples = st.samples[1:]
	}
}

// rates are the per-second rates over the samples.
func (st *stats) rates() (pubs, pubBytes, sentMsgs, sentBytes float64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.samples) < 2 {
		return
	}
	a, b := st.samples[0], st.samples[len(st.samples)-1]
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return
	}
	return float64(b.pubs-a.pubs) / d, float64(b.pubBytes-a.pubBytes) / d,
		float64(b.sentMsgs-a.sentMsgs) / d, float64(b.sentBytes-a.sentBytes) / d
}

// Disconnect and refusal reasons exported from the start, at 0, so that
// rates and dashboards see a series before the first one.
var (
	knownDisconnects = []string{"slow", "no_pong", "write_error", "connection_closed", "connection_expired", "shutdown"}
	knownRefusals    = []string{"no_token", "invalid_token", "token_expired", "permission_denied", "origin", "connection_limit"}
)

// Stats reports the sink's figures (sinks.StatsReporter); the agent
// shows them in status and exports them as sluice_sink_<name>.
func (s *Sink) Stats() []sinks.Stat {
	var clients, subs float64
	if node := s.running.Load(); node != nil {
		clients, subs = float64(node.Hub().NumClients()), float64(node.Hub().NumSubscriptions())
	}
	channels, history := s.chans.history(s.now(), s.cfg.HistoryTTL, s.cfg.HistorySize)
	pubRate, pubBytesRate, sentRate, sentBytesRate := s.st.rates()
	out := []sinks.Stat{
		{Name: "live_clients", Help: "Clients connected to the live sink.", Value: clients},
		{Name: "live_subscriptions", Help: "Channel subscriptions of the live sink's clients.", Value: subs},
		{Name: "live_channels", Help: "Channels the live sink published on within history_ttl.", Value: float64(channels)},
		{Name: "live_history_points", Help: "Points the live sink's channels hold for recovery (what this agent published, up to each channel's size).", Value: float64(history)},
		{Name: "live_publications_total", Help: "Points the live sink published.", Counter: true, Value: float64(s.st.published.Load())},
		{Name: "live_publication_bytes_total", Help: "Bytes of the points the live sink published (JSON).", Counter: true, Value: float64(s.st.publishedBytes.Load())},
		{Name: "live_publications_per_second", Help: "Points the live sink published per second, over the last 5s.", Value: pubRate},
		{Name: "live_publication_bytes_per_second", Help: "Bytes the live sink published per second, over the last 5s.", Value: pubBytesRate},
		{Name: "live_sent_messages_total", Help: "Messages the live sink sent to clients (publications and replies).", Counter: true, Value: float64(s.st.sentMessages.Load())},
		{Name: "live_sent_bytes_total", Help: "Bytes the live sink sent to clients.", Counter: true, Value: float64(s.st.sentBytes.Load())},
		{Name: "live_sent_messages_per_second", Help: "Messages the live sink sent to clients per second, over the last 5s.", Value: sentRate},
		{Name: "live_sent_bytes_per_second", Help: "Bytes the live sink sent to clients per second, over the last 5s.", Value: sentBytesRate},
		{Name: "live_duplicates_total", Help: "Points the live sink did not publish again: their uniqueness key was published within redis.dedup_window.", Counter: true, Value: float64(s.st.suppressed.Load())},
	}
	if s.redis != nil {
		out = append(out,
			sinks.Stat{Name: "live_redis_connected", Help: "1 while the live sink's Redis answers, else 0 (points are then skipped).", Value: boolValue(s.redis.isUp())},
			sinks.Stat{Name: "live_skipped_total", Help: "Points the live sink did not publish because Redis did not answer; not retried, as live data that arrives late is not live.", Counter: true, Value: float64(s.redis.skipped.Load())})
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	add := func(name, help, label string, known []string, m map[string]uint64) {
		for _, r := range known {
			out = append(out, sinks.Stat{Name: name, Help: help, Counter: true, Label: label, LabelValue: r, Value: float64(m[r])})
		}
		for _, r := range sortedKeys(m) {
			if !contains(known, r) {
				out = append(out, sinks.Stat{Name: name, Help: help, Counter: true, Label: label, LabelValue: r, Value: float64(m[r])})
			}
		}
	}
	add("live_disconnects_total", "Clients the live sink disconnected or lost, by reason (slow: its queue was full).", "reason", knownDisconnects, s.st.disconnects)
	add("live_refused_total", "Connections, subscriptions and requests the live sink refused, by reason.", "reason", knownRefusals, s.st.refused)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
