package agent_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/live/livetest"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testredis"
)

// The live sink's Redis outages, with two agents sharing one real
// redis-server: agent a ingests BTCUSDT, agent b ETHUSDT, each from its
// own simulated market, each into SQLite and its live sink.

const (
	btcChannel = "trades:binance:spot:BTCUSDT"
	ethChannel = "trades:binance:spot:ETHUSDT"
)

// redisPair is the two agents, their markets and their Redis.
type redisPair struct {
	redis        *testredis.Server
	a, b         *testagent.Agent
	btc, eth     *market
	addrA, addrB string // live endpoints
}

// launchRedisPair starts both agents on r, which may be down.
func launchRedisPair(t *testing.T, r *testredis.Server) *redisPair {
	t.Helper()
	p := &redisPair{redis: r, btc: startMarket(t, 200, "BTCUSDT"), eth: startMarket(t, 200, "ETHUSDT"),
		addrA: testagent.FreeAddr(t), addrB: testagent.FreeAddr(t)}
	redis := "redis: {address: " + r.Addr + "}"
	dirA, dirB := t.TempDir(), t.TempDir()
	p.a = testagent.Launch(t, testagent.WriteConfig(t, dirA, "sinks:\n  db: {type: sqlite}\n"+
		liveSinkConfig(t, dirA, "live", p.addrA, redis)+"feeds:\n"+p.btc.feed("spot", "db", "live")))
	p.b = testagent.Launch(t, testagent.WriteConfig(t, dirB, "sinks:\n  db: {type: sqlite}\n"+
		liveSinkConfig(t, dirB, "live", p.addrB, redis)+"feeds:\n"+p.eth.feed("spot", "db", "live")))
	return p
}

// each runs f for agent a with its market, then agent b with its.
func (p *redisPair) each(f func(name string, ag *testagent.Agent, m *market, symbol string)) {
	f("a", p.a, p.btc, "BTCUSDT")
	f("b", p.b, p.eth, "ETHUSDT")
}

// trade runs both markets for d, then stops them, and waits until every
// trade generated so far is in each agent's SQLite file, once.
func (p *redisPair) trade(t *testing.T, d time.Duration) {
	t.Helper()
	p.btc.run()
	p.eth.run()
	time.Sleep(d)
	p.btc.halt()
	p.eth.halt()
	p.each(func(_ string, ag *testagent.Agent, m *market, symbol string) {
		n := int64(len(m.tradeIDs(symbol)))
		ag.WaitForCount(t, `SELECT count(*) FROM trades`, n)
		ag.WaitForCount(t, `SELECT count(DISTINCT trade_id) FROM trades`, n)
	})
}

// downReason is how status and /readyz say that Redis does not answer.
func downReason(addr string) *regexp.Regexp {
	return regexp.MustCompile(`^not connected to Redis at ` + regexp.QuoteMeta(addr) + ` since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: .*connection refused`)
}

// waitLiveDown waits until status shows the live sink failed because
// Redis does not answer, and checks that /readyz and `sluice status`
// say so.
func waitLiveDown(t *testing.T, ag *testagent.Agent, addr string) {
	t.Helper()
	re := downReason(addr)
	st := ag.WaitFor(t, "the live sink failed: Redis does not answer", func(st agent.Status) bool {
		s := testagent.Sink(st, "live")
		return s.State == pipeline.SinkFailed && re.MatchString(s.LastError)
	})
	if s := testagent.Sink(st, "db"); s.State != pipeline.SinkOK {
		t.Errorf("sink db is %s (%s) while Redis is down", s.State, s.LastError)
	}
	waitReadiness(t, ag, "readyz failing for the live sink", func(code int, r agent.Readiness) bool {
		return code == http.StatusServiceUnavailable && slices.ContainsFunc(r.Reasons, func(reason string) bool {
			return strings.HasPrefix(reason, "sink live is failed: ") && re.MatchString(strings.TrimPrefix(reason, "sink live is failed: "))
		})
	})
	_, metrics := get(t, ag.Base+"/metrics")
	if v := metricValue(t, metrics, `sluice_sink_failed{sink="live"}`); v != 1 {
		t.Errorf(`sluice_sink_failed{sink="live"} = %v while Redis is down, want 1`, v)
	}
	if v := metricValue(t, metrics, `sluice_sink_live_redis_connected{sink="live"}`); v != 0 {
		t.Errorf(`sluice_sink_live_redis_connected{sink="live"} = %v while Redis is down, want 0`, v)
	}
	out, _, _ := sluiceCmd(t, "status", "-config", ag.Config)
	if !regexp.MustCompile(`(?m)^live +failed .*not connected to Redis at `+regexp.QuoteMeta(addr)).MatchString(out) ||
		!regexp.MustCompile(`(?m)^sink live: .*redis connected 0; skipped `).MatchString(out) {
		t.Errorf("sluice status while Redis is down:\n%s", out)
	}
}

// waitLiveUp waits until the live sink is ok and the agent ready.
func waitLiveUp(t *testing.T, ag *testagent.Agent) {
	t.Helper()
	ag.WaitFor(t, "the live sink ok", func(st agent.Status) bool {
		return testagent.Sink(st, "live").State == pipeline.SinkOK && liveStat(st, "live", "live_redis_connected", "") == 1
	})
	waitReadiness(t, ag, "readyz ok", func(code int, _ agent.Readiness) bool { return code == http.StatusOK })
}

// waitReadiness polls /readyz until cond holds.
func waitReadiness(t *testing.T, ag *testagent.Agent, what string, cond func(int, agent.Readiness) bool) {
	t.Helper()
	deadline := time.Now().Add(testagent.WaitTimeout)
	for {
		code, r := readiness(t, ag)
		if cond(code, r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %d %q", what, code, r.Reasons)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveCounts are a live sink's publications, duplicates and skipped points.
func liveCounts(t *testing.T, ag *testagent.Agent) (published, duplicates, skipped float64) {
	t.Helper()
	st, ok := ag.Status(t)
	if !ok {
		t.Fatal("no status")
	}
	return liveStat(st, "live", "live_publications_total", ""), liveStat(st, "live", "live_duplicates_total", ""),
		liveStat(st, "live", "live_skipped_total", "")
}

// waitAccounted waits until the live sink has accounted for n points.
func waitAccounted(t *testing.T, name string, ag *testagent.Agent, n int) {
	t.Helper()
	ag.WaitFor(t, fmt.Sprintf("agent %s's live sink to account for %d points", name, n), func(st agent.Status) bool {
		return liveStat(st, "live", "live_publications_total", "")+liveStat(st, "live", "live_duplicates_total", "")+
			liveStat(st, "live", "live_skipped_total", "") >= float64(n)
	})
}

// checkLiveCounted waits until the pipeline has accounted for the n
// points routed to agent name's live sink, and checks that the skipped
// ones are counted as dropped{skipped} and the rest as written, in
// status, in /metrics and in `sluice status`, and that the sink's own
// live_skipped_total agrees.
func checkLiveCounted(t *testing.T, name string, ag *testagent.Agent, n, skipped int) {
	t.Helper()
	st := ag.WaitFor(t, fmt.Sprintf("agent %s's pipeline to account for %d points to the live sink", name, n), func(st agent.Status) bool {
		s := testagent.Sink(st, "live")
		var dropped uint64
		for _, v := range s.Dropped {
			dropped += v
		}
		return s.Written+dropped >= uint64(n)
	})
	s := testagent.Sink(st, "live")
	written := uint64(n - skipped)
	want := map[pipeline.Reason]uint64{pipeline.ReasonBufferFull: 0, pipeline.ReasonRejected: 0, pipeline.ReasonSkipped: uint64(skipped), pipeline.ReasonUndecodable: 0}
	if s.Written != written || !maps.Equal(s.Dropped, want) {
		t.Errorf("agent %s: the live sink's status has written %d, dropped %v; want written %d, dropped %v", name, s.Written, s.Dropped, written, want)
	}
	if v := liveStat(st, "live", "live_skipped_total", ""); v != float64(skipped) {
		t.Errorf("agent %s: live_skipped_total %v, dropped{skipped} %d", name, v, skipped)
	}
	_, metrics := get(t, ag.Base+"/metrics")
	if v := metricValue(t, metrics, `sluice_sink_points_written_total{sink="live"}`); v != float64(written) {
		t.Errorf(`agent %s: sluice_sink_points_written_total{sink="live"} = %v, want %d`, name, v, written)
	}
	if v := metricValue(t, metrics, `sluice_sink_points_dropped_total{reason="skipped",sink="live"}`); v != float64(skipped) {
		t.Errorf(`agent %s: sluice_sink_points_dropped_total{reason="skipped",sink="live"} = %v, want %d`, name, v, skipped)
	}
	out, _, _ := sluiceCmd(t, "status", "-config", ag.Config)
	dropped := "0"
	if skipped > 0 {
		dropped = fmt.Sprintf(`%d \(skipped %d\)`, skipped, skipped)
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^live +\w+ +\d+ \([^)]*\) +%d +%s `, written, dropped)).MatchString(out) {
		t.Errorf("agent %s: sluice status does not show the live sink's %d written, %d skipped:\n%s", name, written, skipped, out)
	}
}

// Both agents start while Redis is down: they start, SQLite gets every
// trade, the live sinks show as failed (status, /readyz, `sluice
// status`) and count what they skip. Once Redis starts they serve, and
// a client of either agent gets both agents' trades from then on, in
// order, once.
func TestLiveRedisDownAtStart(t *testing.T) {
	r := testredis.New(t, testredis.FreeAddr(t))
	p := launchRedisPair(t, r)
	p.each(func(_ string, ag *testagent.Agent, _ *market, _ string) { waitLiveDown(t, ag, r.Addr) })

	p.trade(t, time.Second)
	before := map[string]int{}
	p.each(func(name string, ag *testagent.Agent, m *market, symbol string) {
		n := len(m.tradeIDs(symbol))
		before[symbol] = n
		waitAccounted(t, name, ag, n)
		if pub, dup, skipped := liveCounts(t, ag); pub != 0 || dup != 0 || skipped != float64(n) {
			t.Errorf("agent %s with Redis down: published %v, duplicates %v, skipped %v; want 0, 0, %d", name, pub, dup, skipped, n)
		}
		checkLiveCounted(t, name, ag, n, n)
		waitLiveDown(t, ag, r.Addr)
	})

	r.Start()
	p.each(func(_ string, ag *testagent.Agent, _ *market, _ string) { waitLiveUp(t, ag) })
	tok := livetest.Token(t, liveSecret, "lee", time.Now().Add(time.Hour), "*")
	clients := map[string]*livetest.Client{"client of a": livetest.NewClient(t, livetest.URL(p.addrA), tok, nil), "client of b": livetest.NewClient(t, livetest.URL(p.addrB), tok, nil)}
	for _, c := range clients {
		c.Subscribe(t, btcChannel)
		c.Subscribe(t, ethChannel)
		if err := c.Connect(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(t, "subscribed", func() bool {
			return c.HasEvent("subscribed: "+btcChannel) && c.HasEvent("subscribed: "+ethChannel)
		})
	}

	p.trade(t, 1500*time.Millisecond)
	for _, ch := range []struct {
		channel string
		m       *market
		symbol  string
	}{{btcChannel, p.btc, "BTCUSDT"}, {ethChannel, p.eth, "ETHUSDT"}} {
		want := ch.m.tradeIDs(ch.symbol)[before[ch.symbol]:]
		for name, c := range clients {
			c.WaitFor(t, name+": "+ch.channel, func() bool { return c.Count(ch.channel) >= len(want) })
		}
		time.Sleep(200 * time.Millisecond)
		for name, c := range clients {
			sameIDs(t, name+" on "+ch.channel, liveTradeIDs(t, c, ch.channel), want)
		}
	}
	p.each(func(name string, ag *testagent.Agent, m *market, symbol string) {
		n := len(m.tradeIDs(symbol))
		waitAccounted(t, name, ag, n)
		if pub, dup, skipped := liveCounts(t, ag); pub != float64(n-before[symbol]) || dup != 0 || skipped != float64(before[symbol]) {
			t.Errorf("agent %s: published %v, duplicates %v, skipped %v; want %d, 0, %d", name, pub, dup, skipped, n-before[symbol], before[symbol])
		}
		checkLiveCounted(t, name, ag, n, before[symbol])
	})
	p.a.Stop(t)
	p.b.Stop(t)
}

// Redis is killed mid-run and started again, empty: SQLite gets every
// trade throughout; the live sinks show as failed while Redis is down,
// skip (and count) the trades of that time, and publish again once it
// is back. Their clients get every trade from before the outage, none
// from during it, and from after it every trade from their resubscription
// on (the new Redis has a new epoch: they learn that they did not
// recover), in order, once.
func TestLiveRedisRestart(t *testing.T) {
	r := testredis.Start(t)
	p := launchRedisPair(t, r)
	p.each(func(_ string, ag *testagent.Agent, _ *market, _ string) { waitLiveUp(t, ag) })
	tok := livetest.Token(t, liveSecret, "max", time.Now().Add(time.Hour), "*")
	clients := map[string]*livetest.Client{"client of a": livetest.NewClient(t, livetest.URL(p.addrA), tok, nil), "client of b": livetest.NewClient(t, livetest.URL(p.addrB), tok, nil)}
	for _, c := range clients {
		c.Subscribe(t, btcChannel)
		c.Subscribe(t, ethChannel)
		if err := c.Connect(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(t, "subscribed", func() bool {
			return c.HasEvent("subscribed: "+btcChannel) && c.HasEvent("subscribed: "+ethChannel)
		})
	}
	type phase struct{ btc, eth int }
	count := func() phase { return phase{len(p.btc.tradeIDs("BTCUSDT")), len(p.eth.tradeIDs("ETHUSDT"))} }

	p.trade(t, time.Second)
	first := count()
	for name, c := range clients {
		c.WaitFor(t, name+": the trades before the outage", func() bool {
			return c.Count(btcChannel) >= first.btc && c.Count(ethChannel) >= first.eth
		})
	}

	r.Kill()
	p.each(func(_ string, ag *testagent.Agent, _ *market, _ string) { waitLiveDown(t, ag, r.Addr) })
	p.trade(t, 1500*time.Millisecond)
	second := count()
	p.each(func(name string, ag *testagent.Agent, m *market, symbol string) {
		waitAccounted(t, name, ag, len(m.tradeIDs(symbol)))
	})

	r.Start()
	p.each(func(_ string, ag *testagent.Agent, _ *market, _ string) { waitLiveUp(t, ag) })
	p.trade(t, 2*time.Second)

	for _, ch := range []struct {
		channel       string
		ids           []int64
		first, second int
	}{
		{btcChannel, p.btc.tradeIDs("BTCUSDT"), first.btc, second.btc},
		{ethChannel, p.eth.tradeIDs("ETHUSDT"), first.eth, second.eth},
	} {
		last := ch.ids[len(ch.ids)-1]
		for name, c := range clients {
			c.WaitFor(t, name+": the last trade on "+ch.channel, func() bool {
				return c.Count(ch.channel) > 0 && lastID(t, c, ch.channel) == last
			})
		}
		time.Sleep(200 * time.Millisecond)
		for name, c := range clients {
			got := liveTradeIDs(t, c, ch.channel)
			if len(got) < ch.first {
				t.Fatalf("%s on %s: %d trades, fewer than the %d before the outage", name, ch.channel, len(got), ch.first)
			}
			sameIDs(t, name+" on "+ch.channel+" before the outage", got[:ch.first], ch.ids[:ch.first])
			after := got[ch.first:]
			if len(after) == 0 {
				t.Fatalf("%s on %s: nothing after the outage", name, ch.channel)
			}
			// From the first trade it got after the outage, every one to
			// the end: none of the outage's, in order, once.
			from := 0
			for from < len(ch.ids) && ch.ids[from] != after[0] {
				from++
			}
			if from < ch.second {
				t.Errorf("%s on %s: got trade %d, generated while Redis was down", name, ch.channel, after[0])
			}
			if from < len(ch.ids) {
				sameIDs(t, name+" on "+ch.channel+" after the outage", after, ch.ids[from:])
			}
			t.Logf("%s on %s: %d of the %d trades after the outage; events %v", name, ch.channel, len(after), len(ch.ids)-ch.second, c.Events())
		}
	}
	p.each(func(name string, ag *testagent.Agent, m *market, symbol string) {
		n := len(m.tradeIDs(symbol))
		waitAccounted(t, name, ag, n)
		f, s := first.btc, second.btc
		if symbol == "ETHUSDT" {
			f, s = first.eth, second.eth
		}
		pub, dup, skipped := liveCounts(t, ag)
		if pub+dup+skipped != float64(n) || skipped < float64(s-f) || dup != 0 {
			t.Errorf("agent %s: published %v, duplicates %v, skipped %v of %d trades; want every one accounted for once, at least the %d of the outage skipped",
				name, pub, dup, skipped, n, s-f)
		}
		checkLiveCounted(t, name, ag, n, int(skipped))
		t.Logf("agent %s: %d trades (%d during the outage): published %v, skipped %v", name, n, s-f, pub, skipped)
	})
	p.a.Stop(t)
	p.b.Stop(t)
}

// lastID is the trade id of the newest publication a client got on a
// channel (under the client's lock).
func lastID(t *testing.T, c *livetest.Client, channel string) int64 {
	t.Helper()
	pubs := c.Pubs(channel)
	var v struct {
		Fields struct {
			TradeID int64 `json:"trade_id"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(pubs[len(pubs)-1].Data, &v); err != nil {
		t.Fatal(err)
	}
	return v.Fields.TradeID
}

// What is wrong in the config stays a config error naming the key: a
// password file that cannot be read stops the start. A password that
// Redis refuses is found only when Redis answers: the agent runs, and the
// live sink shows as failed, naming the keys to check.
func TestLiveRedisCredentials(t *testing.T) {
	r := testredis.New(t, testredis.FreeAddr(t))
	r.Args = []string{"--requirepass", "right-password-0123"}
	r.Start()

	dir := t.TempDir()
	unreadable := filepath.Join(dir, "redis.password") // a directory: unreadable as a file, even for root
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	path := testagent.WriteConfig(t, dir, "sinks:\n"+liveSinkConfig(t, dir, "live", testagent.FreeAddr(t),
		fmt.Sprintf("redis: {address: %s, password_file: %q}", r.Addr, unreadable))+"feeds: {}\n")
	_, errOut, code := sluiceCmd(t, "run", "-config", path)
	if code == 0 || !strings.Contains(errOut, path+": sinks.live.redis.password_file: ") {
		t.Errorf("sluice run with an unreadable password_file: exit %d, stderr:\n%s", code, errOut)
	}

	wrong := filepath.Join(dir, "wrong.password")
	testagent.WriteFile(t, wrong, "wrong-password-0123\n")
	dir2 := t.TempDir()
	ag := testagent.Launch(t, testagent.WriteConfig(t, dir2, "sinks:\n"+liveSinkConfig(t, dir2, "live", testagent.FreeAddr(t),
		fmt.Sprintf("redis: {address: %s, password_file: %q}", r.Addr, wrong))+"feeds: {}\n"))
	ag.WaitFor(t, "the live sink failed: Redis refuses the password", func(st agent.Status) bool {
		s := testagent.Sink(st, "live")
		return s.State == pipeline.SinkFailed && strings.HasPrefix(s.LastError, "not connected to Redis at "+r.Addr+" since ") &&
			strings.Contains(s.LastError, ": the server refused the credentials (check redis.user and redis.password_file): WRONGPASS")
	})
	ag.Stop(t)
}
