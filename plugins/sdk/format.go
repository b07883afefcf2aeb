package sdk

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// WriteSample prints what Sample made of a file of sample messages, for
// people: per message its line (lines[i] is results[i]'s), then one line
// per point (FormatPoint) and per error, or a note for a message that
// made neither; and a summary.
func WriteSample(w io.Writer, lines []int, results []SampleResult) error {
	var points, errs, unmatched, other int
	bw := bufio.NewWriter(w)
	for i, r := range results {
		switch {
		case len(r.Points) == 0 && len(r.Errors) == 0:
			note := r.Note
			if r.Unmatched {
				unmatched++
				if note == "" {
					note = "no rule matched"
				}
			} else {
				other++
				if note == "" {
					note = "no point"
				}
			}
			fmt.Fprintf(bw, "line %d: %s\n", lines[i], note)
			continue
		default:
			fmt.Fprintf(bw, "line %d:\n", lines[i])
		}
		for _, p := range r.Points {
			fmt.Fprintf(bw, "  %s\n", FormatPoint(p))
		}
		for _, e := range r.Errors {
			fmt.Fprintf(bw, "  error: %s\n", e)
		}
		points += len(r.Points)
		errs += len(r.Errors)
	}
	fmt.Fprintf(bw, "%d messages: %d points, %d mapping errors, %d unmatched", len(results), points, errs, unmatched)
	if other > 0 {
		fmt.Fprintf(bw, ", %d without points", other)
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// FormatPoint renders a point on one line, for people (the sample mode,
// sdktest's messages) and golden files:
//
//	measurement tag=value ... | field=value ... | time
//
// Tags and fields appear in order. Floats print in their shortest exact
// form, ints with an "i" suffix, uints with "u", strings quoted, bools as
// true/false; a tag value is quoted when it holds a space, "=", "|" or a
// quote. The time is RFC 3339 in UTC with as many fractional digits as it
// needs; the received time is left out.
func FormatPoint(p sluice.Point) string {
	var b strings.Builder
	b.WriteString(quoteIfNeeded(p.Measurement))
	for _, t := range p.Tags {
		b.WriteByte(' ')
		b.WriteString(quoteIfNeeded(t.Key))
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(t.Value))
	}
	b.WriteString(" |")
	for _, f := range p.Fields {
		b.WriteByte(' ')
		b.WriteString(quoteIfNeeded(f.Key))
		b.WriteByte('=')
		b.WriteString(formatValue(f.Value))
	}
	b.WriteString(" | ")
	b.WriteString(p.Time.UTC().Format(time.RFC3339Nano))
	return b.String()
}

func formatValue(v sluice.Value) string {
	switch v.Kind() {
	case sluice.KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case sluice.KindInt:
		return strconv.FormatInt(v.Int(), 10) + "i"
	case sluice.KindUint:
		return strconv.FormatUint(v.Uint(), 10) + "u"
	case sluice.KindString:
		return strconv.Quote(v.Str())
	case sluice.KindBool:
		return strconv.FormatBool(v.Bool())
	}
	return v.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " =|\"\t\n") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return s
}
