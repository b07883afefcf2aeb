package wire

import "fmt"

// Trade ids (t) and aggregate trade ids (a) count up by one per symbol and
// market, so a jump means missed trades, which can be fetched back over
// REST (/aggTrades?fromId=), and a step back means a repeat, typically
// after a reconnect.

// IDStatus classifies a new id against the last one seen.
type IDStatus uint8

const (
	IDNext      IDStatus = iota // the id right after the last one
	IDDuplicate                 // at or before the last id: seen already
	IDGap                       // ids are missing before this one
)

func (s IDStatus) String() string {
	switch s {
	case IDNext:
		return "next"
	case IDDuplicate:
		return "duplicate"
	case IDGap:
		return "gap"
	}
	return fmt.Sprintf("IDStatus(%d)", uint8(s))
}

// IDCheck is the verdict on one id. For IDGap, [From, To] is the missing
// range, both ends included.
type IDCheck struct {
	Status   IDStatus
	From, To int64
}

// CheckID compares a new id with the last one seen.
func CheckID(last, id int64) IDCheck {
	switch {
	case id <= last:
		return IDCheck{Status: IDDuplicate}
	case id == last+1:
		return IDCheck{Status: IDNext}
	}
	return IDCheck{Status: IDGap, From: last + 1, To: id - 1}
}

// IDTracker remembers the last id per symbol and checks each new one. The
// first id of a symbol is IDNext: there is nothing to compare it with. The
// zero IDTracker is ready to use; it is not safe for concurrent use.
type IDTracker struct {
	last map[string]int64
}

// Observe checks id against the symbol's last id and, unless it is a
// duplicate, makes it the last id.
func (t *IDTracker) Observe(symbol string, id int64) IDCheck {
	last, ok := t.last[symbol]
	if !ok {
		if t.last == nil {
			t.last = make(map[string]int64)
		}
		t.last[symbol] = id
		return IDCheck{Status: IDNext}
	}
	c := CheckID(last, id)
	if c.Status != IDDuplicate {
		t.last[symbol] = id
	}
	return c
}

// Last returns the last id seen for a symbol.
func (t *IDTracker) Last(symbol string) (int64, bool) {
	id, ok := t.last[symbol]
	return id, ok
}

// Set makes id the symbol's last id, as when resuming from a stored
// position or after a backfill.
func (t *IDTracker) Set(symbol string, id int64) {
	if t.last == nil {
		t.last = make(map[string]int64)
	}
	t.last[symbol] = id
}
