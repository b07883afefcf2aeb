package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSessionMix reads a three-frame session in the recorded format:
// trades from aggTrade's first and last ids, update ids and levels from
// the diff, per second of the session.
func TestSessionMix(t *testing.T) {
	lines := []string{
		`{"t":100,"src":"connect","url":"wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/btcusdt@depth@100ms/btcusdt@bookTicker"}`,
		`{"t":100,"src":"ws","raw":"{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":7,\"p\":\"1.0\",\"q\":\"1.0\",\"f\":10,\"l\":13,\"T\":1,\"m\":true,\"M\":true}}"}`,
		`{"t":101,"src":"ws","raw":"{\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":2,\"s\":\"BTCUSDT\",\"U\":5,\"u\":10,\"b\":[[\"1.0\",\"2.0\"],[\"0.9\",\"0\"]],\"a\":[[\"1.1\",\"3.0\"]]}}"}`,
		`{"t":102,"src":"ws","raw":"{\"stream\":\"btcusdt@bookTicker\",\"data\":{\"u\":10,\"s\":\"BTCUSDT\",\"b\":\"1.0\",\"B\":\"2.0\",\"a\":\"1.1\",\"A\":\"3.0\"}}"}`,
		`{"t":102,"src":"rest","url":"https://api.binance.com/api/v3/depth?symbol=BTCUSDT","raw":"{}"}`,
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spot_x.replay.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mix, err := recordedMix(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := symbolMix{session: "spot_x", symbol: "BTCUSDT", seconds: 2, trades: 2, updateIDs: 3,
		bookTicker: 0.5, depthEvents: 0.5, levels: 3, hasBookTicker: true}
	if len(mix) != 1 || mix[0] != want {
		t.Errorf("got %+v\nwant %+v", mix, want)
	}
	if _, err := recordedMix(t.TempDir()); err == nil {
		t.Error("no error for a directory without sessions")
	}
}
