package rest

import (
	"testing"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

func TestRESTWeights(t *testing.T) {
	for _, tc := range []struct {
		m        market.Market
		endpoint string
		limit    int
		want     int
	}{
		{market.Spot, "depth", 100, 5}, {market.Spot, "depth", 500, 25}, {market.Spot, "depth", 1000, 50}, {market.Spot, "depth", 5000, 250},
		{market.USDM, "depth", 100, 5}, {market.USDM, "depth", 500, 10}, {market.COINM, "depth", 1000, 20},
		{market.Spot, "aggTrades", 1000, 4}, {market.USDM, "aggTrades", 1000, 20},
		{market.Spot, "historicalTrades", 1000, 25}, {market.COINM, "historicalTrades", 500, 20},
	} {
		if got := Weight(tc.m, tc.endpoint, tc.limit); got != tc.want {
			t.Errorf("Weight(%v, %s, %d) = %d, want %d", tc.m, tc.endpoint, tc.limit, got, tc.want)
		}
	}
	for depth, want := range map[int]int{1: 100, 20: 100, 21: 500, 100: 500, 101: 1000, 1000: 1000} {
		if got := SnapshotLimit(depth); got != want {
			t.Errorf("SnapshotLimit(%d) = %d, want %d", depth, got, want)
		}
	}
}
