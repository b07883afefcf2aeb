package jsonws

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
)

// The jsonws source keeps the plugin contract against a WebSocket server
// that sends trades until the source goes away.
func TestContract(t *testing.T) {
	srv := newWSServer(t, func(_ int, c *websocket.Conn, _ *http.Request) {
		go drain(c)
		for id := 1; ; id++ {
			msg := fmt.Sprintf(`{"type":"trade","sym":"BTC","id":%d,"p":%d.5,"ts":%d}`, id, 100+id%7, 1700000000000+id)
			if c.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	config := fmt.Sprintf(`{"url":%q,"rules":[
		{"name":"hb","match":[{"path":"type","equals":"hb"}],"alive":true},
		{"match":[{"path":"type","equals":"trade"}],"measurement":"trades","tags":{"symbol":"sym"},
		 "fields":{"price":{"path":"p","type":"float"},"trade_id":{"path":"id","type":"int"}},
		 "time":{"path":"ts","format":"unix_ms"},"unique":["symbol","trade_id"]}]}`, srv.wsURL("/"))
	sdktest.Check(t, func() sdk.Source { return newSource(discardLogger()) }, sdktest.Contract{
		Config: config,
		Invalid: []sdktest.Invalid{{
			Config: `{"url":"http://x","max_json_depth":-1,"stale_after":"soon","ping":{"timeout":"1m","intervl":1},"rules":[{"measurement":"m"}]}`,
			Keys:   []string{"url", "max_json_depth", "stale_after", "ping.intervl", "rules[0].fields"},
		}},
		Samples: [][]byte{
			[]byte(`{"type":"trade","sym":"ETH","id":7,"p":1.25,"ts":1700000000000}`),
			[]byte(`{"type":"hb"}`),
			[]byte(`{"type":"other"}`),
		},
	})
}
