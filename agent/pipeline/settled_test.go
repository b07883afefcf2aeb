package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

// A feed's settled position stays behind what a sink has not written,
// and reaches its newest position once every sink has written it all.
// Position is where the feed resumes on this agent; Settled is what
// another agent may resume from without a gap in the sinks.
func TestSettledWaitsForEverySink(t *testing.T) {
	b := openTestBuffer(t, t.TempDir(), SinkLimit{Name: "a", MaxBytes: 1 << 20}, SinkLimit{Name: "b", MaxBytes: 1 << 20})
	if p, seq := b.Settled("f"); p != nil || seq != 0 || b.Appended("f") != 0 {
		t.Fatal("a feed with nothing buffered has a settled position")
	}
	for i := range 3 {
		if err := b.Append(context.Background(), &Entry{Feed: "f", Sinks: []string{"a", "b"},
			Position: sluice.Position(fmt.Sprint(i)), Points: pts(4*i, 4*i+4)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(b.Position("f")); got != "2" {
		t.Fatalf("position %q, want 2", got)
	}
	if got, _ := b.Settled("f"); got != nil {
		t.Fatalf("settled %q before any sink wrote", got)
	}
	if n := b.Appended("f"); n != 3 {
		t.Fatalf("appended %d, want 3", n)
	}
	oa := NewOutput("a", &memSink{}, testCfg(config.Block), b.Cursor("a"), discard, nil)
	oa.Start()
	closeOutput(t, oa)
	if got, _ := b.Settled("f"); got != nil {
		t.Fatalf("settled %q while sink b has written nothing", got)
	}
	ob := NewOutput("b", &memSink{}, testCfg(config.Block), b.Cursor("b"), discard, nil)
	ob.Start()
	closeOutput(t, ob)
	got, seq := b.Settled("f")
	if string(got) != "2" || seq != 3 {
		t.Fatalf("settled %q (entry %d) once both sinks wrote everything, want 2 (entry 3)", got, seq)
	}
	got[0] = 'x'
	if again, _ := b.Settled("f"); string(again) != "2" {
		t.Error("Settled returned the buffer's own copy")
	}
}
