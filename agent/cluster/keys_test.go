package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	for _, s := range []Slot{{"btc", 0}, {"spot.btc-usdt_1", 2}, {"a..b", 10}, {".x.", 0}} {
		k := leaseKey(s)
		if strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
			t.Errorf("%s: key %q has an empty token", s, k)
		}
		got, ok := parseLeaseKey(k)
		if !ok || got != s {
			t.Errorf("%s: key %q parses as %v, %v", s, k, got, ok)
		}
	}
	for _, k := range []string{"agent.a", "lease.", "lease.f", "lease.f.x", "lease.f.-1", "lease.f.01", "lease..0", "lease.f.1.2"} {
		if s, ok := parseLeaseKey(k); ok {
			t.Errorf("%q parses as %v", k, s)
		}
	}
	if got := agentKey("rec-1.example"); got != "agent.rec-1=2Eexample" {
		t.Errorf("agent key %q", got)
	}
	if leasesBucket("eu_1") != "sluice_eu_1_leases" || positionsBucket("eu_1") != "sluice_eu_1_positions" {
		t.Error("bucket names")
	}
}

func TestDecodeValue(t *testing.T) {
	if _, err := decodeValue[lease]([]byte(`{"agent":"a","instance":"i1"}`)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"agent":"a"}`, `[1]`, `{"agent":"a","instance":"i","since":"x"}`, strings.Repeat(" ", maxValueBytes+1)} {
		if _, err := decodeValue[lease]([]byte(bad)); !errors.Is(err, errValue) {
			t.Errorf("lease %q: %v", bad, err)
		}
	}
	p, err := decodeValue[storedPosition]([]byte(`{"position":"AAAAAAAAAAo=","agent":"a"}`))
	if err != nil || len(p.Position) != 8 || p.Position[7] != 10 {
		t.Errorf("position %v, %v", p, err)
	}
	if _, err := decodeValue[storedPosition]([]byte(`{"position":"%%%"}`)); !errors.Is(err, errValue) {
		t.Errorf("a position that is not base64: %v", err)
	}
}

// FuzzDecodeValue: whatever the shared bucket holds, decoding it neither
// panics nor returns a lease without a holder.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte(`{"agent":"a","instance":"i","since":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"agent":"a","instance":"i","feeds":["x"]}`))
	f.Add([]byte(`{"position":"AAAAAAAAAAo=","agent":"a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := decodeValue[lease](b); err == nil && (l.Agent == "" || l.Instance == "") {
			t.Errorf("lease without a holder: %+v", l)
		}
		if p, err := decodeValue[presence](b); err == nil && p.Agent == "" {
			t.Errorf("presence without an agent: %+v", p)
		}
		decodeValue[storedPosition](b)
	})
}
