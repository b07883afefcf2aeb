package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

// Reason names why a point was rejected or dropped. Reasons are stable:
// they appear in status and metrics.
type Reason string

const (
	ReasonEmptyMeasurement Reason = "empty_measurement"
	ReasonNoFields         Reason = "no_fields"
	ReasonTooManyTags      Reason = "too_many_tags"
	ReasonTooManyFields    Reason = "too_many_fields"
	ReasonKeyTooLong       Reason = "key_too_long"
	ReasonEmptyKey         Reason = "empty_key"
	ReasonDuplicateKey     Reason = "duplicate_key"
	ReasonValueTooLong     Reason = "value_too_long"
	ReasonInvalidUTF8      Reason = "invalid_utf8"
	ReasonNonFinite        Reason = "non_finite_float"
	ReasonTimeOutOfRange   Reason = "time_out_of_range"
	ReasonUndecodable      Reason = "undecodable" // a field type this host does not know
	// A feed's name budget (see Names).
	ReasonTooManyMeasurements Reason = "too_many_measurements"
	ReasonTooManyColumns      Reason = "too_many_columns"

	// Drops in outputs.
	ReasonBufferFull Reason = "buffer_full"
	ReasonRejected   Reason = "rejected_by_sink"
	ReasonSkipped    Reason = "skipped" // the sink let them go on purpose (sinks.SkippedError)
)

// minTime and maxTime bound event times to what every sink can store as
// int64 nanoseconds since the epoch.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Rejection is one point that failed normalization.
type Rejection struct {
	Reason Reason
	Detail string
}

// Normalizer checks points against the configured limits.
type Normalizer struct {
	limits config.Limits
	now    func() time.Time
}

// NewNormalizer returns a Normalizer; now may be nil for the wall clock.
func NewNormalizer(limits config.Limits, now func() time.Time) *Normalizer {
	if now == nil {
		now = time.Now
	}
	return &Normalizer{limits: limits, now: now}
}

// Normalize checks points in place, keeping the valid ones (with sorted
// tags, and an event time filled from the receive time when missing) at
// the front of the slice. It returns the kept points, whether any point
// was left out or changed, and calls reject for each point left out.
// names, the feed's name budget, may be nil for none; a point is charged
// to it only once it passed every other check.
func (n *Normalizer) Normalize(points []sluice.Point, names *Names, reject func(Rejection)) (kept []sluice.Point, changed bool) {
	now := n.now()
	if names != nil {
		names.mu.Lock()
		defer names.mu.Unlock()
		defer names.forgetLast()
	}
	kept = points[:0]
	for i := range points {
		p := &points[i]
		r, ok := n.check(p, now, &changed)
		if ok && names != nil {
			r, ok = names.admit(p)
		}
		if !ok {
			changed = true
			reject(r)
			continue
		}
		kept = append(kept, *p)
	}
	clear(points[len(kept):]) // let rejected points' memory go
	return kept, changed
}

// check checks p, sorting its tags and filling its time, and sets
// *changed when it did either.
func (n *Normalizer) check(p *sluice.Point, now time.Time, changed *bool) (Rejection, bool) {
	fail := func(r Reason, format string, args ...any) (Rejection, bool) {
		return Rejection{Reason: r, Detail: fmt.Sprintf("measurement %q: ", p.Measurement) + fmt.Sprintf(format, args...)}, false
	}
	l := n.limits
	switch {
	case p.Measurement == "":
		return fail(ReasonEmptyMeasurement, "empty measurement")
	case !utf8.ValidString(p.Measurement):
		return fail(ReasonInvalidUTF8, "measurement is not valid UTF-8")
	case len(p.Measurement) > l.MaxKeyLength:
		return fail(ReasonKeyTooLong, "measurement name is %d bytes, limit %d", len(p.Measurement), l.MaxKeyLength)
	case len(p.Fields) == 0:
		return fail(ReasonNoFields, "point has no fields")
	case len(p.Tags) > l.MaxTags:
		return fail(ReasonTooManyTags, "%d tags, limit %d", len(p.Tags), l.MaxTags)
	case len(p.Fields) > l.MaxFields:
		return fail(ReasonTooManyFields, "%d fields, limit %d", len(p.Fields), l.MaxFields)
	}
	if !slices.IsSortedFunc(p.Tags, func(a, b sluice.Tag) int { return strings.Compare(a.Key, b.Key) }) {
		p.SortTags()
		*changed = true
	}
	for i, t := range p.Tags {
		if r, ok := n.checkKey("tag", t.Key); !ok {
			return fail(r.Reason, "%s", r.Detail)
		}
		if i > 0 && p.Tags[i-1].Key == t.Key {
			return fail(ReasonDuplicateKey, "tag %q appears twice", t.Key)
		}
		if len(t.Value) > l.MaxValueLength {
			return fail(ReasonValueTooLong, "tag %q value is %d bytes, limit %d", t.Key, len(t.Value), l.MaxValueLength)
		}
		if !utf8.ValidString(t.Value) {
			return fail(ReasonInvalidUTF8, "tag %q value is not valid UTF-8", t.Key)
		}
	}
	for i, f := range p.Fields {
		if r, ok := n.checkKey("field", f.Key); !ok {
			return fail(r.Reason, "%s", r.Detail)
		}
		for _, g := range p.Fields[:i] {
			if g.Key == f.Key {
				return fail(ReasonDuplicateKey, "field %q appears twice", f.Key)
			}
		}
		switch v := f.Value; v.Kind() {
		case sluice.KindFloat:
			if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				return fail(ReasonNonFinite, "field %q is %v", f.Key, x)
			}
		case sluice.KindString:
			if len(v.Str()) > l.MaxValueLength {
				return fail(ReasonValueTooLong, "field %q value is %d bytes, limit %d", f.Key, len(v.Str()), l.MaxValueLength)
			}
			if !utf8.ValidString(v.Str()) {
				return fail(ReasonInvalidUTF8, "field %q value is not valid UTF-8", f.Key)
			}
		case sluice.KindInt, sluice.KindUint, sluice.KindBool:
		default:
			return fail(ReasonUndecodable, "field %q has no value", f.Key)
		}
	}
	if p.Time.IsZero() {
		*changed = true
		p.Time = p.Received
		if p.Time.IsZero() {
			p.Time = now
		}
	}
	if p.Time.Before(minTime) || p.Time.After(maxTime) || p.Time.After(now.Add(l.MaxFuture)) {
		return fail(ReasonTimeOutOfRange, "time %s is outside [1970-01-01, now+%s]", p.Time.UTC().Format(time.RFC3339Nano), l.MaxFuture)
	}
	return Rejection{}, true
}

func (n *Normalizer) checkKey(kind, key string) (Rejection, bool) {
	switch {
	case key == "":
		return Rejection{Reason: ReasonEmptyKey, Detail: "empty " + kind + " key"}, false
	case len(key) > n.limits.MaxKeyLength:
		return Rejection{Reason: ReasonKeyTooLong, Detail: fmt.Sprintf("%s key %.32q... is %d bytes, limit %d", kind, key, len(key), n.limits.MaxKeyLength)}, false
	case !utf8.ValidString(key):
		return Rejection{Reason: ReasonInvalidUTF8, Detail: kind + " key is not valid UTF-8"}, false
	}
	return Rejection{}, true
}
