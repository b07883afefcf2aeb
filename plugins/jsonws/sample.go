package jsonws

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// maxSampleLine bounds one line of a sample file.
const maxSampleLine = 16 << 20

// SampleMessage is what the rules made of one sample message.
type SampleMessage struct {
	Line    int  // 1-based line in the sample file
	Matched bool // a rule that maps points matched it
	Alive   bool // an alive rule matched it: it proves the feed alive
	Points  []sluice.Point
	Errors  []MapError
}

// Sample maps every message of a sample file (one JSON message per line;
// blank lines and lines starting with # are skipped) with the feed
// config's rules, all as received at received, so a mapping can be
// developed offline. config is the feed's `config:` block as JSON; only
// the rules have to make sense, but the whole block is checked, secrets
// aside, so that what passes here passes Configure too.
func Sample(config json.RawMessage, r io.Reader, received time.Time) ([]SampleMessage, error) {
	_, set, err := parseConfig(sdk.ConfigureRequest{Config: config, ValidateOnly: true}, nil)
	if err != nil {
		return nil, err
	}
	var out []SampleMessage
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSampleLine)
	for line := 1; sc.Scan(); line++ {
		msg := bytes.TrimSpace(sc.Bytes())
		if len(msg) == 0 || msg[0] == '#' {
			continue
		}
		points, errs, matched, alive := set.mapper.mapMessage(msg, received, nil)
		out = append(out, SampleMessage{Line: line, Matched: matched, Alive: alive, Points: points, Errors: errs})
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading the sample: %w", err)
	}
	return out, nil
}

// WriteSample prints Sample's results: per message its line, then one
// line per point (FormatPoint) and per error, and a summary.
func WriteSample(w io.Writer, msgs []SampleMessage) error {
	var points, errs, unmatched, heartbeats int
	bw := bufio.NewWriter(w)
	for _, m := range msgs {
		switch {
		case !m.Matched && m.Alive && len(m.Errors) == 0:
			heartbeats++
			fmt.Fprintf(bw, "line %d: heartbeat (an alive rule matched: it proves the feed alive)\n", m.Line)
			continue
		case !m.Matched && len(m.Errors) == 0:
			unmatched++
			fmt.Fprintf(bw, "line %d: no rule matched\n", m.Line)
			continue
		default:
			fmt.Fprintf(bw, "line %d:\n", m.Line)
		}
		for _, p := range m.Points {
			fmt.Fprintf(bw, "  %s\n", FormatPoint(p))
		}
		for _, e := range m.Errors {
			fmt.Fprintf(bw, "  error: %s\n", e.Error())
		}
		points += len(m.Points)
		errs += len(m.Errors)
	}
	fmt.Fprintf(bw, "%d messages: %d points, %d mapping errors, %d unmatched", len(msgs), points, errs, unmatched)
	if heartbeats > 0 {
		fmt.Fprintf(bw, ", %d heartbeats", heartbeats)
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}
