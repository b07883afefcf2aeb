package agent

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

func TestKeyRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), keysFile)
	log := slog.New(slog.DiscardHandler)
	r := newKeyRegistry(path, log)
	trades := func(unique ...string) []sluice.Measurement {
		return []sluice.Measurement{{Name: "trades", Unique: unique}, {Name: "feed_events"}}
	}
	if _, err := r.claim("a", "/etc/a.yaml", trades("symbol", "seq")); err != nil {
		t.Fatal(err)
	}
	// The same key, in another order, is no conflict: feeds may share.
	if _, err := r.claim("c", "/etc/c.yaml", trades("seq", "symbol", "seq")); err != nil {
		t.Fatalf("same key: %v", err)
	}
	for _, other := range [][]string{{"symbol"}, nil} {
		_, err := r.claim("b", "/etc/b.yaml", trades(other...))
		var kc *KeyConflictError
		if !errors.As(err, &kc) || len(kc.Conflicts) != 1 || kc.Conflicts[0].Other != "a" {
			t.Fatalf("key %v: claim = %v, want a conflict with a", other, err)
		}
		for _, want := range []string{`measurement "trades"`, "feed b (/etc/b.yaml)", "feed a (/etc/a.yaml)", "(symbol, seq)", formatKey(other)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
	}
	if got := r.claims["trades"]; len(got) != 2 || got[0].Feed != "a" || got[1].Feed != "c" {
		t.Fatalf("trades held by %+v, want a and c", got)
	}
	// One holder leaving leaves the measurement held.
	r.retain(map[string]config.Feed{"a": {File: "/etc/a.yaml"}, "b": {File: "/etc/b.yaml"}})
	if _, err := r.claim("b", "/etc/b.yaml", trades("symbol")); err == nil {
		t.Fatal("b took trades when c left, while a still holds it")
	}

	// A feed may change its own key; undo puts the old one back.
	undo, err := r.claim("a", "/etc/a.yaml", []sluice.Measurement{{Name: "trades", Unique: []string{"id"}}})
	if err != nil {
		t.Fatalf("a changing its own key: %v", err)
	}
	undo()
	if got := r.claims["trades"]; len(got) != 1 || strings.Join(got[0].Unique, ",") != "symbol,seq" {
		t.Fatalf("after undo trades is held by %+v", got)
	}

	// Claims survive a restart of the agent for the feeds still
	// configured; the others' measurements are free again.
	r2 := newKeyRegistry(path, log)
	r2.load(map[string]config.Feed{"a": {File: "/etc/moved/a.yaml"}})
	if c := r2.claims["trades"]; len(c) != 1 || c[0].Feed != "a" || c[0].File != "/etc/moved/a.yaml" {
		t.Fatalf("after load trades is held by %+v", c)
	}
	if _, err := r2.claim("b", "/etc/b.yaml", trades("symbol")); err == nil {
		t.Fatal("b took a's measurement after a restart")
	}
	r2.retain(map[string]config.Feed{"b": {File: "/etc/b.yaml"}})
	if _, err := r2.claim("b", "/etc/b.yaml", trades("symbol")); err != nil {
		t.Fatalf("b after a left: %v", err)
	}
}

func TestKeyConflictsInValidate(t *testing.T) {
	cfg := &config.Config{Feeds: map[string]config.Feed{
		"a": {File: "/etc/sluice.yaml"}, "b": {File: "/etc/feeds.d/b.yaml"}, "c": {File: "/etc/feeds.d/c.yaml"},
	}}
	errs := keyConflicts(cfg, map[string][]sluice.Measurement{
		"a": {{Name: "trades", Unique: []string{"symbol", "seq"}}},
		"b": {{Name: "trades", Unique: []string{"symbol"}}},
		"c": {{Name: "trades", Unique: []string{"seq", "symbol"}}, {Name: "candles"}},
	})
	if len(errs) != 1 {
		t.Fatalf("got %v, want one error, for b", errs)
	}
	msg := errs[0].Error()
	if !strings.HasPrefix(msg, "/etc/feeds.d/b.yaml: feeds.b: ") || !strings.Contains(msg, "feed a (/etc/sluice.yaml)") {
		t.Errorf("error %q does not name b's file and key, and a and its file", msg)
	}
}

// Keys one "time" apart (a feed file written before the binance plugin
// keyed trades with time) get a conflict that says what to change; other
// conflicts do not.
func TestKeyConflictOnlyTimeApartSaysSo(t *testing.T) {
	const hint = "differ only in time"
	for _, c := range []struct {
		a, b []string
		hint bool
	}{
		{[]string{"exchange", "symbol", "trade_id", "time"}, []string{"trade_id", "exchange", "symbol"}, true},
		{[]string{"symbol", "trade_id"}, []string{"time", "symbol", "trade_id"}, true},
		{[]string{"symbol", "trade_id"}, []string{"symbol", "time"}, false},
		{[]string{"symbol"}, []string{"symbol", "trade_id", "time"}, false},
		{nil, []string{"time"}, false},
	} {
		err := (&KeyConflictError{Feed: "b", File: "b.yaml", Conflicts: []KeyConflict{
			{Measurement: "trades", Unique: c.b, Other: "a", OtherFile: "a.yaml", OtherUnique: c.a},
		}}).Error()
		if got := strings.Contains(err, hint); got != c.hint {
			t.Errorf("%v against %v: %q; says %q: %v, want %v", c.a, c.b, err, hint, got, c.hint)
		}
	}
}
