package wire

import (
	"math"
	"testing"
)

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		name     string
		last, id int64
		want     IDCheck
	}{
		{"next", 10, 11, IDCheck{Status: IDNext}},
		{"repeat", 10, 10, IDCheck{Status: IDDuplicate}},
		{"older", 10, 3, IDCheck{Status: IDDuplicate}},
		{"one missing", 10, 12, IDCheck{Status: IDGap, From: 11, To: 11}},
		{"many missing", 10, 20, IDCheck{Status: IDGap, From: 11, To: 19}},
		{"from zero", -1, 0, IDCheck{Status: IDNext}},
		{"at the top", math.MaxInt64 - 1, math.MaxInt64, IDCheck{Status: IDNext}},
		{"nothing after the top", math.MaxInt64, math.MaxInt64, IDCheck{Status: IDDuplicate}},
		{"big jump", 0, math.MaxInt64, IDCheck{Status: IDGap, From: 1, To: math.MaxInt64 - 1}},
	} {
		if got := CheckID(tc.last, tc.id); got != tc.want {
			t.Errorf("%s: CheckID(%d, %d) = %+v, want %+v", tc.name, tc.last, tc.id, got, tc.want)
		}
	}
}

func TestIDTracker(t *testing.T) {
	var tr IDTracker
	steps := []struct {
		sym  string
		id   int64
		want IDCheck
		last int64
	}{
		{"BTCUSDT", 100, IDCheck{Status: IDNext}, 100}, // first sighting
		{"BTCUSDT", 101, IDCheck{Status: IDNext}, 101},
		{"ETHUSDT", 5, IDCheck{Status: IDNext}, 5}, // symbols are independent
		{"BTCUSDT", 101, IDCheck{Status: IDDuplicate}, 101},
		{"BTCUSDT", 99, IDCheck{Status: IDDuplicate}, 101}, // a repeat does not move last back
		{"BTCUSDT", 105, IDCheck{Status: IDGap, From: 102, To: 104}, 105},
		{"BTCUSDT", 106, IDCheck{Status: IDNext}, 106},
		{"ETHUSDT", 6, IDCheck{Status: IDNext}, 6},
	}
	for i, s := range steps {
		if got := tr.Observe(s.sym, s.id); got != s.want {
			t.Errorf("step %d: Observe(%s, %d) = %+v, want %+v", i, s.sym, s.id, got, s.want)
		}
		if last, ok := tr.Last(s.sym); !ok || last != s.last {
			t.Errorf("step %d: Last(%s) = %d, %v; want %d", i, s.sym, last, ok, s.last)
		}
	}
	tr.Set("BTCUSDT", 200)
	if got := tr.Observe("BTCUSDT", 201); got.Status != IDNext {
		t.Errorf("after Set: %+v", got)
	}
	var fresh IDTracker
	fresh.Set("X", 1)
	if _, ok := fresh.Last("Y"); ok {
		t.Error("Last of an unseen symbol")
	}
	if IDGap.String() != "gap" || IDStatus(9).String() != "IDStatus(9)" {
		t.Error("IDStatus.String")
	}
}
