package binancesim

import (
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Fault injection. Each method acts now and returns at once; what it
// causes is counted in Stats.

// liveLocked returns the connections not already ending, oldest first.
func (s *Sim) liveLocked() []*conn {
	var out []*conn
	for _, c := range s.connsLocked() {
		select {
		case <-c.done:
		default:
			out = append(out, c)
		}
	}
	return out
}

// DropAll ends every open connection the way how says, and returns how
// many it ended.
func (s *Sim) DropAll(how Close) int {
	s.mu.Lock()
	conns := s.liveLocked()
	s.mu.Unlock()
	for _, c := range conns {
		s.st.dropped.Add(1)
		c.drop(how)
	}
	return len(conns)
}

// DropConn ends one connection (an id from Conns), reporting whether it
// was open.
func (s *Sim) DropConn(id uint64, how Close) bool {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	s.st.dropped.Add(1)
	c.drop(how)
	return true
}

// DropRandom ends up to n connections picked by the Sim's seeded fault
// generator, and returns their ids.
func (s *Sim) DropRandom(n int, how Close) []uint64 {
	s.mu.Lock()
	conns := s.liveLocked()
	s.faults.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	s.mu.Unlock()
	var ids []uint64
	for _, c := range conns[:min(n, len(conns))] {
		s.st.dropped.Add(1)
		c.drop(how)
		ids = append(ids, c.id)
	}
	return ids
}

// ServerShutdown sends the serverShutdown event to every connection
// (bare on raw connections, in the "!serverShutdown" envelope on combined
// ones). If closeAfter > 0 the connections that got it are then closed
// with 1001 once it has passed, as the server going away would. It
// returns how many connections were told.
func (s *Sim) ServerShutdown(closeAfter time.Duration) int {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	conns := s.liveLocked()
	ms := s.nowUs / 1000
	if closeAfter > 0 {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.send(c.serverShutdownFrame(ms))
	}
	if closeAfter > 0 {
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(closeAfter)
			defer t.Stop()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			for _, c := range conns {
				s.st.dropped.Add(1)
				c.drop(CloseGoingAway)
			}
		}()
	}
	return len(conns)
}

// Stall stops sending one stream's frames (on every connection of the
// market) for d while the connections stay open. The frames of that time
// are lost, not delayed: the client sees the gap when the stream resumes.
func (s *Sim) Stall(m market.Market, stream string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mk := s.markets[m]; mk != nil {
		mk.stalls[stream] = time.Now().Add(d)
	}
}

// RefuseHandshakes answers the next n WebSocket handshakes with an HTTP
// error of the given status (429 and 418 as rate limiting does, 403 as a
// WAF does) and, if retryAfter > 0, a Retry-After header.
func (s *Sim) RefuseHandshakes(n, status int, retryAfter time.Duration) {
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refusal{n: n, status: status, retryAfter: retryAfter}
}

// InjectDepthGap loses the next diff-depth event of a symbol on every
// update speed: the event after it then starts past the client's last u
// (spot U > u+1, futures pu != u), as if a frame went missing. Snapshots
// stay consistent, so a client that resyncs rebuilds a correct book. It
// reports whether the symbol exists.
func (s *Sim) InjectDepthGap(m market.Market, symbol string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk := s.markets[m]
	if mk == nil {
		return false
	}
	sym := mk.by[strings.ToUpper(symbol)]
	if sym == nil {
		return false
	}
	for _, a := range sym.diffs {
		a.gap = true
	}
	return true
}

// ExpireConns closes every connection as reaching MaxLifetime does, and
// returns how many.
func (s *Sim) ExpireConns() int {
	s.mu.Lock()
	conns := s.liveLocked()
	s.mu.Unlock()
	for _, c := range conns {
		s.st.expired.Add(1)
		c.drop(c.mk.lim.lifetime)
	}
	return len(conns)
}
