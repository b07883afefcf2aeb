package binance

import (
	"slices"
	"testing"

	"github.com/sluicehq/sluice"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

func idPoint(id int64) sluice.Point {
	return sluice.Point{Measurement: market.MeasTrades, Fields: []sluice.Field{{Key: "trade_id", Value: sluice.Int(id)}}}
}

func ids(points []sluice.Point) []int64 {
	var out []int64
	for _, p := range points {
		v, _ := p.Field("trade_id")
		out = append(out, v.Int())
	}
	return out
}

func TestIDSeq(t *testing.T) {
	type step struct {
		offer int64 // id to offer; 0: skipTo or requeue instead
		skip  int64
		// requeue hands back the previous step's released points
		// from this id on, as a refused Emit does.
		requeue int64
		res     offerResult
		ready   []int64
		lost    int64
		last    int64
		hole    [2]int64 // {0,0}: none
	}
	for _, tc := range []struct {
		name    string
		resume  int64
		pending int
		steps   []step
	}{
		{"first id starts the sequence", 0, 10, []step{
			{offer: 100, res: offerReleased, ready: []int64{100}, last: 100},
			{offer: 101, res: offerReleased, ready: []int64{101}, last: 101},
			{offer: 101, res: offerDuplicate, last: 101},
			{offer: 50, res: offerDuplicate, last: 101},
		}},
		{"hole filled out of order", 10, 10, []step{
			{offer: 13, res: offerPending, last: 10, hole: [2]int64{11, 12}},
			{offer: 14, res: offerPending, last: 10, hole: [2]int64{11, 12}},
			{offer: 13, res: offerDuplicate, last: 10, hole: [2]int64{11, 12}},
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 11, res: offerReleased, ready: []int64{11, 12, 13, 14}, last: 14},
		}},
		{"two holes", 10, 10, []step{
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 15, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 11, res: offerReleased, ready: []int64{11, 12}, last: 12, hole: [2]int64{13, 14}},
		}},
		{"skip keeps the pending trades it passes", 10, 10, []step{
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 14, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 17, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{skip: 15, ready: []int64{12, 14}, lost: 3, last: 15, hole: [2]int64{16, 16}},
			{skip: 16, ready: []int64{17}, lost: 1, last: 17},
			{skip: 3, last: 17},
		}},
		{"bounded pending", 10, 2, []step{
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 13, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 14, res: offerDropped, last: 10, hole: [2]int64{11, 11}},
			{offer: 11, res: offerReleased, ready: []int64{11, 12, 13}, last: 13},
			{offer: 15, res: offerPending, last: 13, hole: [2]int64{14, 14}},
		}},
		{"a refused point is a hole though nothing waits past it", 10, 10, []step{
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 11, res: offerReleased, ready: []int64{11, 12}, last: 12},
			{requeue: 12, last: 11, hole: [2]int64{12, 12}},
			{offer: 13, res: offerPending, last: 11, hole: [2]int64{12, 12}},
			{offer: 12, res: offerReleased, ready: []int64{12, 13}, last: 13},
		}},
		{"points released after a refused one wait for it", 10, 10, []step{
			{offer: 12, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 13, res: offerPending, last: 10, hole: [2]int64{11, 11}},
			{offer: 11, res: offerReleased, ready: []int64{11, 12, 13}, last: 13},
			{requeue: 12, last: 11, hole: [2]int64{12, 12}},
			{offer: 13, res: offerDuplicate, last: 11, hole: [2]int64{12, 12}},
			{offer: 15, res: offerPending, last: 11, hole: [2]int64{12, 12}},
			{skip: 12, ready: []int64{13}, lost: 1, last: 13, hole: [2]int64{14, 14}},
			{offer: 14, res: offerReleased, ready: []int64{14, 15}, last: 15},
		}},
		{"a refused first id", 0, 10, []step{
			{offer: 100, res: offerReleased, ready: []int64{100}, last: 100},
			{requeue: 100, last: 99, hole: [2]int64{100, 100}},
			{offer: 101, res: offerPending, last: 99, hole: [2]int64{100, 100}},
			{offer: 100, res: offerReleased, ready: []int64{100, 101}, last: 101},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := idSeq{maxPending: tc.pending}
			if tc.resume > 0 {
				s.resume(tc.resume)
			}
			var released []sluice.Point
			for i, st := range tc.steps {
				var ready []sluice.Point
				switch {
				case st.requeue != 0:
					k := slices.Index(ids(released), st.requeue)
					if k < 0 {
						t.Fatalf("step %d: %d was not released by the step before", i, st.requeue)
					}
					s.requeue(st.requeue, released[k:])
					if !s.owing() {
						t.Fatalf("step %d: nothing owed after requeue", i)
					}
				case st.offer != 0:
					var res offerResult
					ready, res = s.offer(st.offer, idPoint(st.offer), nil)
					if res != st.res {
						t.Fatalf("step %d: offer %d: result %v, want %v", i, st.offer, res, st.res)
					}
				default:
					var lost int64
					ready, lost = s.skipTo(st.skip, nil)
					if lost != st.lost {
						t.Fatalf("step %d: skipTo %d lost %d, want %d", i, st.skip, lost, st.lost)
					}
				}
				released = ready
				if got := ids(ready); !slices.Equal(got, st.ready) {
					t.Fatalf("step %d: released %v, want %v", i, got, st.ready)
				}
				if s.last != st.last {
					t.Fatalf("step %d: last %d, want %d", i, s.last, st.last)
				}
				from, to, ok := s.hole()
				if want := st.hole != [2]int64{}; ok != want || (ok && [2]int64{from, to} != st.hole) {
					t.Fatalf("step %d: hole %d..%d (%v), want %v", i, from, to, ok, st.hole)
				}
			}
		})
	}
}

func TestPositionRoundTrip(t *testing.T) {
	p := Position{Market: market.USDM, Trade: map[string]int64{"BTCUSDT": 123}, AggTrade: map[string]int64{"ETHUSDT": 9}}
	b := p.Encode()
	if want := `{"v":1,"market":"usdm","trade":{"BTCUSDT":123},"aggTrade":{"ETHUSDT":9}}`; string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	got, err := DecodePosition(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Market != market.USDM || got.Trade["BTCUSDT"] != 123 || got.AggTrade["ETHUSDT"] != 9 {
		t.Fatalf("decoded %+v", got)
	}
	for _, bad := range []string{`{`, `{"v":2,"market":"spot"}`, `{"v":1,"market":"margin"}`, `[]`} {
		if _, err := DecodePosition(sluice.Position(bad)); err == nil {
			t.Errorf("DecodePosition(%s) succeeded", bad)
		}
	}
	if p, err := DecodePosition(nil); err != nil || p.Trade != nil {
		t.Fatalf("empty position: %+v, %v", p, err)
	}
}

func FuzzDecodePosition(f *testing.F) {
	f.Add([]byte(`{"v":1,"market":"spot","trade":{"BTCUSDT":1}}`))
	f.Add([]byte(`{"v":1,"market":"coinm","aggTrade":{"BTCUSD_PERP":-5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePosition(b)
		if err != nil || len(b) == 0 {
			return // an empty position is a first start, not one to encode
		}
		again, err := DecodePosition(p.Encode())
		if err != nil {
			t.Fatalf("re-decoding %s: %v", p.Encode(), err)
		}
		if again.Market != p.Market || len(again.Trade) != len(p.Trade) || len(again.AggTrade) != len(p.AggTrade) {
			t.Fatalf("round trip changed %+v into %+v", p, again)
		}
	})
}
