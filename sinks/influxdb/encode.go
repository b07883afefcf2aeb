package influxdb

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/lineproto"
)

// Line protocol is internal/lineproto's, with uints written as ints:
// InfluxDB 1.8 refuses the "u" suffix.

var errTimeRange = lineproto.ErrTimeRange

var errNeedsNanos = errors.New("unique key names fields, whose identity offsets need precision ns")

func appendPoint(dst []byte, p *sluice.Point, ts int64) ([]byte, error) {
	return lineproto.AppendPoint(dst, p, ts, lineproto.UintsAsInts)
}

func nanos(t time.Time) (int64, bool) { return lineproto.Nanos(t) }
