package e2e_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/agent"
)

// The plugin's closing stats line reaches the agent's log when the agent
// stops, every time: sdk.Serve waits for the source's Run to finish
// before the plugin process exits. Without that wait this failed within
// ten rounds on a loaded machine (three busy loops beside it).
func TestClosingStatsLineAtShutdown(t *testing.T) {
	srv := newWSServer(t, func(c *websocket.Conn) {
		for id := 1; id <= 3; id++ {
			c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"trade","s":"S","id":%d}`, id))
		}
		drain(c)
	})
	for i := range 3 {
		a := startAgent(t, map[string]string{"f.yaml": fmt.Sprintf(staleFeed, "f", srv.url("/"), "")})
		a.WaitFor(t, "the trades", func(st agent.Status) bool {
			_, points, _, _ := feed(st, "f")
			return points >= 3
		})
		a.Stop(t)
		var line string
		for _, l := range strings.Split(a.Log(), "\n") {
			if strings.Contains(l, `msg="jsonws stopped"`) {
				line = l
			}
		}
		if !regexp.MustCompile(`matched=3 .*points=3 `).MatchString(line) {
			t.Fatalf("run %d: no closing stats line with the counters in the agent log:\n%s", i, a.Log())
		}
	}
}
