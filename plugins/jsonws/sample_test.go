package jsonws

import (
	"strings"
	"testing"
	"time"
)

// The sample mode takes the messages as one connection's: pings are
// shown answered (with the reply, secrets as their references), replies
// to our heartbeat as such, acks as remembered, and data mapped with what
// was remembered.
func TestSampleGolden(t *testing.T) {
	cfg := yamlJSON(t, `
url: ws://x
heartbeat: {every: 5s, send: {event: ping, cid: 1}, reply: {match: [{path: event, equals: pong}]}}
reconnect: {when: [{path: event, equals: "bts:request_reconnect"}]}
answer:
  - {text: ping, reply: pong}
  - match: [{path: ping, exists: true}]
    reply: {pong: "${msg:ping}", key: "${env:JSONWS_SAMPLE_KEY}"}
rules:
  - name: subscribed
    match: [{path: event, equals: subscribed}]
    remember: [{table: channels, key: chanId, value: symbol}]
  - name: hb
    match: [{path: "1", equals: hb}]
    alive: true
  - name: trade
    match: [{path: "1", equals: te}]
    measurement: trades
    tags:
      symbol: {path: "0", lookup: channels}
      side: {path: "2.2", sign: true, map: {"1": buy, "-1": sell}}
    fields:
      qty: {path: "2.2", abs: true, type: float}
      price: {path: "2.3", type: float}
      trade_id: {path: "2.0", type: int}
    time: {path: "2.1", format: unix_ms}
    unique: [symbol, trade_id]
`)
	msgs := strings.Join([]string{
		`# a session as the server sends it`,
		`{"event":"info","version":2}`,
		`{"event":"subscribed","channel":"trades","chanId":17470,"symbol":"tBTCUSD"}`,
		`[17470,"te",[401597395,1574694478808,-0.005,7245.3]]`,
		`{"ping":1492420473027}`,
		`ping`,
		`{"event":"pong","ts":1511545528111,"cid":1}`,
		`[17470,"hb"]`,
		`[17471,"te",[1,1574694478808,1,1]]`,
		`{"ping":1}`,
		`{"event":"bts:request_reconnect","channel":"","data":""}`,
	}, "\n")
	got, err := Sample(cfg, strings.NewReader(msgs), time.Unix(1, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteSample(&b, got); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample_protocol.txt", b.String())
}
