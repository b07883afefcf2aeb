package influxdb

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice"
)

// batch is one Write's encoded lines, reused from Write to Write.
type batch struct {
	buf     []byte // every line, each ending in '\n'
	ends    []int  // ends[i] is the offset just past line i's '\n'
	idx     []int  // 0..n-1, the index list of the whole batch
	scratch []byte // body of a non-contiguous subset of lines

	// last identity looked up, since a batch is mostly one measurement
	lastName string
	lastID   *identity

	rejected int
	sample   string
	reason   string
}

// maxKeptBuffer bounds the encoding buffer kept between writes, so that
// one huge batch does not pin its memory for the life of the sink.
const maxKeptBuffer = 32 << 20

func (b *batch) reset() {
	if cap(b.buf) > maxKeptBuffer {
		b.buf, b.scratch = nil, nil
	}
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	b.lastName, b.lastID = "", nil
	b.rejected, b.sample, b.reason = 0, "", ""
}

// add encodes p as the next line.
func (b *batch) add(p *sluice.Point, ids map[string]*identity, unit int64) error {
	ns, ok := nanos(p.Time)
	if !ok || p.Time.IsZero() {
		return errTimeRange
	}
	if p.Measurement != b.lastName || b.lastName == "" {
		b.lastName, b.lastID = p.Measurement, ids[p.Measurement]
	}
	ts := ns
	if b.lastID != nil {
		var offset bool
		ts, offset = b.lastID.timestamp(p, ns)
		if offset && unit != 1 {
			return errNeedsNanos
		}
	}
	if unit != 1 {
		ts = (ts - mod(ts, unit)) / unit
	}
	buf, err := appendPoint(b.buf, p, ts)
	if err != nil {
		return err
	}
	b.buf = buf
	b.ends = append(b.ends, len(buf))
	return nil
}

func (b *batch) lines() int { return len(b.ends) }

// all returns the index list of every line.
func (b *batch) all() []int {
	b.idx = b.idx[:0]
	for i := range b.ends {
		b.idx = append(b.idx, i)
	}
	return b.idx
}

func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// line returns line i without its newline.
func (b *batch) line(i int) string {
	return string(b.buf[b.start(i) : b.ends[i]-1])
}

// body returns the request body for lines idx (ascending): a slice of buf
// when they are contiguous, else a copy in scratch. It is valid until the
// next call.
func (b *batch) body(idx []int) []byte {
	first, last := idx[0], idx[len(idx)-1]
	if last-first == len(idx)-1 {
		return b.buf[b.start(first):b.ends[last]]
	}
	b.scratch = b.scratch[:0]
	for _, i := range idx {
		b.scratch = append(b.scratch, b.buf[b.start(i):b.ends[i]]...)
	}
	return b.scratch
}

// reject counts one refused point, keeping the first as the sample.
func (b *batch) reject(what, reason string) {
	b.rejected++
	if b.rejected == 1 {
		b.reason = truncate(reason, maxSample/2)
		b.sample = truncate(what, maxSample/2) + ": " + b.reason
	}
}

// identify maps what a rejection names to lines among idx, with the
// reason for each. It returns nil when it names none of them.
func (b *batch) identify(idx []int, r rejection) map[int]string {
	if len(r.exact) == 0 && len(r.quoted) == 0 && len(r.numbers) == 0 {
		return nil
	}
	bad := make(map[int]string)
	if len(r.exact) > 0 || len(r.quoted) > 0 {
		byText := make(map[string]int, len(idx))
		for _, i := range idx {
			byText[b.line(i)] = i
		}
		for _, t := range r.exact {
			if i, ok := byText[t]; ok {
				bad[i] = r.msg
			}
		}
		for _, q := range r.quoted {
			if i, ok := matchQuoted(q, byText); ok {
				bad[i] = "unable to parse" + reasonAfterLine(q, b.line(i))
			}
		}
	}
	if len(r.numbers) > 0 {
		// Line numbers count physical lines of the body, and a string
		// field may hold newlines: map them through each line's start.
		first := make([]int, len(idx)) // 1-based physical line of idx[k]
		n := 1
		for k, i := range idx {
			first[k] = n
			n += strings.Count(b.line(i), "\n") + 1
		}
		for _, num := range r.numbers {
			if num >= n {
				continue
			}
			k := lastLE(first, num)
			bad[idx[k]] = fmt.Sprintf("line %d: %s", num, r.msg)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return bad
}

// reasonAfterLine returns ": reason" from a quoted tail "LINE': reason...".
func reasonAfterLine(tail, line string) string {
	rest := tail[len(line)+len("'"):]
	if i := strings.Index(rest, "\nunable to parse '"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// lastLE returns the last k with a[k] <= v (a ascending, a[0] <= v).
func lastLE(a []int, v int) int {
	lo, hi := 0, len(a)
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if a[m] <= v {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// sampleOfPoint describes a point that could not be encoded.
func sampleOfPoint(p *sluice.Point) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%q", p.Measurement)
	for _, t := range p.Tags {
		fmt.Fprintf(&sb, " %q=%q", t.Key, t.Value)
	}
	for _, f := range p.Fields {
		fmt.Fprintf(&sb, " %q=%v", f.Key, f.Value)
	}
	sb.WriteString(" ")
	sb.WriteString(p.Time.Format("2006-01-02T15:04:05.999999999Z07:00"))
	return truncate(sb.String(), maxSample)
}
