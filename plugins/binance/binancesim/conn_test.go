package binancesim

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// pingCounter installs a ping handler on c that counts pings and, if
// answer, echoes them as gorilla's default handler does.
func pingCounter(c *client, answer bool) <-chan struct{} {
	pings := make(chan struct{}, 1000)
	c.ws.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		if answer {
			return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		}
		return nil
	})
	return pings
}

// waitPings reads (and so runs the ping handler) until n pings came. The
// reading goroutine goes on until the connection ends: c is not read
// again.
func waitPings(t *testing.T, c *client, pings <-chan struct{}, n int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.next(); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		select {
		case <-pings:
		case err := <-done:
			t.Fatalf("connection ended after %d pings: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d pings", i)
		}
	}
}

// TestPingPong: a client that answers pings stays connected over many
// pong timeouts; one that does not is dropped; on spot an unsolicited
// pong does not count, on futures it does.
func TestPingPong(t *testing.T) {
	srv := manual(t, Options{PingInterval: 50 * time.Millisecond, PongTimeout: 200 * time.Millisecond})
	good := dial(t, srv.WSURL(market.Spot)+"/ws")
	waitPings(t, good, pingCounter(good, true), 12) // 600 ms: three timeouts

	mute := dial(t, srv.WSURL(market.Spot)+"/ws")
	pingCounter(mute, false)
	if err := mute.closeErr(); closeCode(err) != websocket.CloseAbnormalClosure {
		t.Fatalf("mute client: %v, want an abrupt close", err)
	}
	if st := srv.Stats(); st.PongTimeouts != 1 {
		t.Fatalf("Stats.PongTimeouts = %d", st.PongTimeouts)
	}

	// Unsolicited pongs every 50 ms instead of answers.
	for _, m := range []market.Market{market.Spot, market.USDM} {
		c := dial(t, srv.WSURL(m)+"/ws")
		pings := pingCounter(c, false)
		stop := make(chan struct{})
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for range 200 {
				select {
				case <-stop:
					return
				case <-tick.C:
					if c.ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second)) != nil {
						return
					}
				}
			}
		}()
		if m == market.Spot {
			if err := c.closeErr(); closeCode(err) != websocket.CloseAbnormalClosure {
				t.Fatalf("spot, unsolicited pongs: %v", err)
			}
		} else {
			waitPings(t, c, pings, 12)
		}
		t.Cleanup(func() { close(stop) })
	}
	// The clients that kept up are still connected; the two that did not
	// timed out.
	if st := srv.Stats(); st.PongTimeouts != 2 {
		t.Fatalf("Stats.PongTimeouts = %d, want 2", st.PongTimeouts)
	}
	open := map[uint64]bool{}
	for _, ci := range srv.Conns() {
		open[ci.ID] = true
	}
	if !open[1] || !open[4] || open[2] || open[3] {
		t.Fatalf("open connections %v, want 1 (answers pings) and 4 (futures, unsolicited pongs)", open)
	}
}

// TestMaxLifetime closes connections at MaxLifetime with a 1001 close
// frame.
func TestMaxLifetime(t *testing.T) {
	srv := manual(t, Options{MaxLifetime: 200 * time.Millisecond})
	c := dial(t, srv.WSURL(market.USDM)+"/ws/btcusdt@trade")
	if err := c.closeErr(); closeCode(err) != 1001 {
		t.Fatalf("got %v, want close 1001", err)
	}
	if st := srv.Stats(); st.Expired != 1 || st.Accepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}
