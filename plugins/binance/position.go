package binance

import (
	"encoding/json"
	"fmt"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Position is how far a feed has got: per symbol, the last trade id and
// the last aggregate trade id up to which every id has been emitted (or
// given up and reported). It is what the source checkpoints and what it
// resumes, and backfills, from.
//
// It is encoded as compact JSON, {"v":1,"market":"spot","trade":{"BTCUSDT":
// 123},"aggTrade":{...}}: a few dozen bytes a symbol, readable in a status
// page, and open to new fields.
type Position struct {
	Market   market.Market
	Trade    map[string]int64
	AggTrade map[string]int64
}

type positionJSON struct {
	V        int              `json:"v"`
	Market   string           `json:"market"`
	Trade    map[string]int64 `json:"trade,omitempty"`
	AggTrade map[string]int64 `json:"aggTrade,omitempty"`
}

const positionVersion = 1

// Encode returns the position as the opaque bytes a host stores.
func (p *Position) Encode() sluice.Position {
	b, err := json.Marshal(positionJSON{V: positionVersion, Market: p.Market.String(), Trade: p.Trade, AggTrade: p.AggTrade})
	if err != nil {
		panic(err) // maps of string to int64 always marshal
	}
	return b
}

// DecodePosition reads what Encode wrote. An empty position is a first
// start: no ids.
func DecodePosition(b sluice.Position) (Position, error) {
	if len(b) == 0 {
		return Position{}, nil
	}
	var pj positionJSON
	if err := json.Unmarshal(b, &pj); err != nil {
		return Position{}, fmt.Errorf("binance position: %w", err)
	}
	if pj.V != positionVersion {
		return Position{}, fmt.Errorf("binance position: version %d, want %d", pj.V, positionVersion)
	}
	m, err := market.ParseMarket(pj.Market)
	if err != nil {
		return Position{}, fmt.Errorf("binance position: %w", err)
	}
	return Position{Market: m, Trade: pj.Trade, AggTrade: pj.AggTrade}, nil
}
