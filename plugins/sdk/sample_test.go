package sdk

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// echo is a Sampler that makes one point of each message holding its
// text, and none of an empty one.
type echo struct {
	scripted
	calls int
}

func (e *echo) Sample(_ context.Context, req ConfigureRequest, msgs [][]byte, received time.Time) ([]SampleResult, error) {
	if _, err := e.Configure(context.Background(), req); err != nil {
		return nil, err
	}
	e.calls++
	out := make([]SampleResult, len(msgs))
	for i, m := range msgs {
		if len(m) == 0 {
			out[i] = SampleResult{Unmatched: true}
			continue
		}
		out[i].Points = []sluice.Point{{Measurement: "m", Fields: []sluice.Field{field("text", sluice.String(string(m)))}, Time: received, Received: received}}
	}
	return out, nil
}

// Sample crosses the boundary in calls of bounded size, results in
// order; config problems come back as ConfigErrors; a plugin that is not
// a Sampler says so.
func TestSampleAcrossTheBoundary(t *testing.T) {
	src := &echo{}
	c := connect(t, src)
	ctx := context.Background()
	info, err := c.Describe(ctx)
	if err != nil || !strings.Contains(strings.Join(info.Capabilities, ","), CapSample) {
		t.Fatalf("describe: %+v %v", info, err)
	}
	var msgs [][]byte
	for i := range 3000 {
		msgs = append(msgs, bytes.Repeat([]byte{'a' + byte(i%26)}, 1000))
	}
	msgs = append(msgs, nil)
	received := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	results, err := c.Sample(ctx, ConfigureRequest{Config: []byte(`{}`)}, msgs, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(msgs) || src.calls < 3 {
		t.Fatalf("%d results of %d messages in %d calls", len(results), len(msgs), src.calls)
	}
	for i, r := range results[:3000] {
		if v, _ := r.Points[0].Field("text"); v.Str() != string(msgs[i]) || !r.Points[0].Time.Equal(received) {
			t.Fatalf("result %d: %+v", i, r.Points[0])
		}
	}
	if last := results[3000]; !last.Unmatched || len(last.Points) != 0 {
		t.Errorf("an unmatched message: %+v", last)
	}

	_, err = c.Sample(ctx, ConfigureRequest{Config: []byte(`{"rate":-1}`)}, msgs[:1], received)
	var ces ConfigErrors
	if !errors.As(err, &ces) || ces.Error() != "rate: must not be negative" {
		t.Errorf("a bad config: %v", err)
	}
	if _, err := c.Sample(ctx, ConfigureRequest{}, [][]byte{make([]byte, MaxSampleBytes+1)}, received); err == nil {
		t.Error("a message past MaxSampleBytes was sent")
	}
	if _, err := connect(t, &scripted{}).Sample(ctx, ConfigureRequest{}, msgs[:1], received); err == nil || !strings.Contains(err.Error(), "cannot map sample messages") {
		t.Errorf("a plugin that is not a Sampler: %v", err)
	}
}

func TestWriteSample(t *testing.T) {
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := WriteSample(&b, []int{1, 3, 4, 7}, []SampleResult{
		{Points: []sluice.Point{{Measurement: "m", Tags: []sluice.Tag{tag("s", "a b")}, Fields: []sluice.Field{field("x", sluice.Int(1))}, Time: ts}}},
		{Errors: []string{"path p: missing"}},
		{Unmatched: true},
		{Note: "heartbeat"},
	})
	want := "line 1:\n  m s=\"a b\" | x=1i | 2024-01-01T00:00:00Z\nline 3:\n  error: path p: missing\nline 4: no rule matched\nline 7: heartbeat\n" +
		"4 messages: 1 points, 1 mapping errors, 1 unmatched, 1 without points\n"
	if err != nil || b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
