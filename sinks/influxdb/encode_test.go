package influxdb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func pt(m string, tags []sluice.Tag, fields ...sluice.Field) sluice.Point {
	return sluice.Point{Measurement: m, Tags: tags, Fields: fields, Time: time.Unix(0, 1700000000123456789)}
}

func tg(kv ...string) []sluice.Tag {
	var ts []sluice.Tag
	for i := 0; i < len(kv); i += 2 {
		ts = append(ts, sluice.Tag{Key: kv[i], Value: kv[i+1]})
	}
	return ts
}

func fl(k string, v sluice.Value) sluice.Field { return sluice.Field{Key: k, Value: v} }

func TestBatchTimeAndPrecision(t *testing.T) {
	p := pt("m", nil, fl("f", sluice.Int(1)))
	p.Time = time.Unix(1, 999_999_999)
	for _, tc := range []struct {
		unit int64
		want string
	}{{1, "1999999999"}, {1e3, "1999999"}, {1e6, "1999"}, {1e9, "1"}} {
		var b batch
		if err := b.add(&p, nil, tc.unit); err != nil {
			t.Fatal(err)
		}
		if got := b.line(0); got != "m f=1i "+tc.want {
			t.Errorf("unit %d: %q", tc.unit, got)
		}
	}
	// Before 1970 the division floors, so the time stays in its unit.
	p.Time = time.Unix(-1, 1) // -0.999999999s
	var b batch
	if err := b.add(&p, nil, 1e9); err != nil {
		t.Fatal(err)
	}
	if got := b.line(0); !strings.HasSuffix(got, " -1") {
		t.Errorf("negative time in s: %q", got)
	}
	for _, bad := range []time.Time{{}, time.Date(1677, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)} {
		p.Time = bad
		if err := b.add(&p, nil, 1); !errors.Is(err, errTimeRange) {
			t.Errorf("time %v: error %v, want errTimeRange", bad, err)
		}
	}
}
