package influxdb

import (
	"math"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func trade(symbol string, id sluice.Value, at time.Time) sluice.Point {
	return sluice.Point{
		Measurement: "trades",
		Tags:        []sluice.Tag{{Key: "exchange", Value: "binance"}, {Key: "symbol", Value: symbol}},
		Fields:      []sluice.Field{{Key: "price", Value: sluice.Float(1.5)}, {Key: "trade_id", Value: id}},
		Time:        at,
	}
}

func TestIdentityTimestamp(t *testing.T) {
	ms := time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC)
	id := newIdentity([]string{"exchange", "symbol", "trade_id", "time"})
	tests := []struct {
		name string
		p    sluice.Point
		want int64 // offset from ms
		ok   bool
	}{
		{"int id", trade("BTC", sluice.Int(4_123_456_789), ms), 456_789, true},
		{"uint id", trade("BTC", sluice.Uint(math.MaxUint64), ms), int64(uint64(math.MaxUint64) % 1e6), true},
		{"negative id", trade("BTC", sluice.Int(-1), ms), 999_999, true},
		{"digit string id", trade("BTC", sluice.String("98765432101234567890"), ms), 567_890, true},
		{"integral float id", trade("BTC", sluice.Float(2_000_001), ms), 1, true},
		{"sub-ms event time replaced", trade("BTC", sluice.Int(7), ms.Add(456*time.Microsecond)), 7, true},
		{"id missing", func() sluice.Point { p := trade("BTC", sluice.Int(1), ms); p.Fields = p.Fields[:1]; return p }(), 0, false},
	}
	base := ms.UnixNano()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, _ := nanos(tt.p.Time)
			got, ok := id.timestamp(&tt.p, ns)
			if ok != tt.ok {
				t.Fatalf("offset applied = %v, want %v", ok, tt.ok)
			}
			if !ok {
				if got != ns {
					t.Errorf("timestamp %d, want the event time %d", got, ns)
				}
				return
			}
			if got-base != tt.want {
				t.Errorf("offset %d, want %d", got-base, tt.want)
			}
		})
	}
}

func TestIdentityHashed(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ns := at.UnixNano()
	id := newIdentity([]string{"symbol", "trade_id"})
	ts := func(v sluice.Value) int64 {
		p := trade("BTC", v, at)
		got, ok := id.timestamp(&p, ns)
		if !ok {
			t.Fatalf("%v: no offset", v)
		}
		if got < ns || got >= ns+int64(time.Millisecond) {
			t.Fatalf("%v: timestamp %d outside the event's millisecond", v, got)
		}
		return got
	}
	// Non-numeric ids hash: deterministic, and distinct ids differ.
	if ts(sluice.String("a-1")) != ts(sluice.String("a-1")) {
		t.Error("hash not deterministic")
	}
	seen := map[int64]string{}
	collisions := 0
	for i := range 1000 {
		s := "uuid-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		if prev, dup := seen[ts(sluice.String(s))]; dup && prev != s {
			collisions++
		}
		seen[ts(sluice.String(s))] = s
	}
	// 1000 ids in 1e6 slots: about 0.5 expected collisions.
	if collisions > 5 {
		t.Errorf("%d collisions among 1000 hashed ids", collisions)
	}
	// Two non-tag fields hash together, order and boundaries included.
	id2 := newIdentity([]string{"a", "b"})
	mk := func(a, b string) int64 {
		p := sluice.Point{Measurement: "m", Fields: []sluice.Field{{Key: "a", Value: sluice.String(a)}, {Key: "b", Value: sluice.String(b)}}}
		got, _ := id2.timestamp(&p, ns)
		return got
	}
	if mk("ab", "c") == mk("a", "bc") {
		t.Error(`("ab","c") and ("a","bc") share an offset`)
	}
}

func TestIdentitySequentialIDsDistinct(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 7_000_000, time.UTC)
	id := newIdentity([]string{"symbol", "trade_id"})
	seen := map[int64]bool{}
	for i := int64(5_000_000_000); i < 5_000_000_000+20_000; i++ {
		p := trade("ETH", sluice.Int(i), at)
		ts, _ := id.timestamp(&p, at.UnixNano())
		if seen[ts] {
			t.Fatalf("trade %d: timestamp %d already used", i, ts)
		}
		seen[ts] = true
	}
}

func TestNewIdentity(t *testing.T) {
	for _, u := range [][]string{nil, {}, {"time"}} {
		if newIdentity(u) != nil {
			t.Errorf("%v: identity, want none", u)
		}
	}
	if id := newIdentity([]string{"time", "symbol"}); id == nil || len(id.keys) != 1 {
		t.Errorf("identity %+v, want keys [symbol]", id)
	}
	// Tags only: the series tells points apart, no offset.
	p := trade("BTC", sluice.Int(1), time.Unix(0, 5))
	if _, ok := newIdentity([]string{"symbol", "exchange", "time"}).timestamp(&p, 5); ok {
		t.Error("offset applied for a tags-only key")
	}
}
