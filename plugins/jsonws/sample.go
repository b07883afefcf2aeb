package jsonws

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// maxSampleLine bounds one line of a sample file.
const maxSampleLine = 16 << 20

// SampleMessage is what the feed's config made of one sample message.
type SampleMessage struct {
	Line       int    // 1-based line in the sample file
	Matched    bool   // a rule that maps points matched it
	Alive      bool   // an alive rule matched it: it proves the feed alive
	Remembered bool   // only a rule that remembers matched it
	Answered   bool   // an answer recognised it as a server ping
	Reply      []byte // what the answer would send (secrets as their references)
	HBReply    bool   // heartbeat.reply recognised it as the reply to a heartbeat
	Reconnect  bool   // reconnect.when recognised it: the server asks to reconnect
	Ack        string // the on_open step whose expect it satisfies ("on_open[0]"), if no rule maps it
	Refusal    string // the on_open step whose fail condition it satisfies
	Points     []sluice.Point
	Errors     []MapError
}

// Sample maps every message of a sample file (one message per line;
// blank lines and lines starting with # are skipped) with the feed
// config, all as received at received, so a mapping can be developed
// offline. The messages are taken as one connection's, in order: what
// rules remember from one is there for the next. A line the config's
// answers or heartbeat.reply recognise is reported as such (with the
// reply an answer would send), not mapped, as on a connection. config is
// the feed's `config:` block as JSON; the whole block is checked, secrets
// aside, so that what passes here passes Configure too.
func Sample(config json.RawMessage, r io.Reader, received time.Time) ([]SampleMessage, error) {
	_, set, err := parseConfig(sdk.ConfigureRequest{Config: config, ValidateOnly: true}, nil)
	if err != nil {
		return nil, err
	}
	var out []SampleMessage
	st := NewState()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSampleLine)
	for line := 1; sc.Scan(); line++ {
		msg := bytes.TrimSpace(sc.Bytes())
		if len(msg) == 0 || msg[0] == '#' {
			continue
		}
		f := frame{text: true, data: msg, received: received}
		var root gjson.Result
		if gjson.ValidBytes(msg) {
			root = gjson.ParseBytes(msg)
		}
		if r := set.heartbeatReply; r != nil && r.matches(f, root, st) {
			out = append(out, SampleMessage{Line: line, HBReply: true})
			continue
		}
		if len(set.reconnectWhen) > 0 && root.Exists() && allHold(set.reconnectWhen, root, st) {
			out = append(out, SampleMessage{Line: line, Reconnect: true})
			continue
		}
		if a := answerOf(set.answers, f, root, st); a != nil {
			m := SampleMessage{Line: line, Answered: true}
			b, err := a.reply.renderFor(root, true)
			if err != nil {
				m.Errors = append(m.Errors, MapError{Rule: "answer", Msg: err.Error()})
			}
			m.Reply = b
			out = append(out, m)
			continue
		}
		points, errs, res := set.mapper.mapMessage(msg, received, nil, st)
		m := SampleMessage{Line: line, Matched: res.matched, Alive: res.alive, Remembered: res.remembered, Points: points, Errors: errs}
		if root.Exists() {
			for i, step := range set.onOpen {
				if slices.ContainsFunc(step.fail, func(c cond) bool { return c.holds(root, st) }) {
					m.Refusal = fmt.Sprintf("on_open[%d]", i)
					break
				}
				if step.expect != nil && step.expect.holds(root, st) {
					m.Ack = fmt.Sprintf("on_open[%d]", i)
					break
				}
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading the sample: %w", err)
	}
	return out, nil
}

// WriteSample prints Sample's results: per message its line, then one
// line per point (FormatPoint) and per error, and a summary.
func WriteSample(w io.Writer, msgs []SampleMessage) error {
	var points, errs, unmatched, heartbeats, answered, remembered int
	bw := bufio.NewWriter(w)
	for _, m := range msgs {
		switch {
		case m.Answered && len(m.Errors) == 0:
			answered++
			fmt.Fprintf(bw, "line %d: answered: %s\n", m.Line, m.Reply)
			continue
		case m.HBReply:
			answered++
			fmt.Fprintf(bw, "line %d: a reply to our heartbeat\n", m.Line)
			continue
		case m.Refusal != "" && !m.Matched:
			fmt.Fprintf(bw, "line %d: a refusal: %s.expect.fail matches it, which would stop the feed\n", m.Line, m.Refusal)
			continue
		case m.Ack != "" && !m.Matched && !m.Remembered && !m.Alive && len(m.Errors) == 0:
			fmt.Fprintf(bw, "line %d: an ack %s waits for\n", m.Line, m.Ack)
			continue
		case m.Reconnect:
			fmt.Fprintf(bw, "line %d: the server asks to reconnect (reconnect.when): the connection would be replaced\n", m.Line)
			continue
		case !m.Matched && m.Remembered && len(m.Errors) == 0:
			remembered++
			fmt.Fprintf(bw, "line %d: remembered (a remember rule matched)\n", m.Line)
			continue
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
	if answered > 0 {
		fmt.Fprintf(bw, ", %d answered", answered)
	}
	if remembered > 0 {
		fmt.Fprintf(bw, ", %d remembered", remembered)
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// answerOf returns the first answer recognising f, or nil.
func answerOf(answers []answer, f frame, root gjson.Result, st *State) *answer {
	for i := range answers {
		if a := &answers[i]; a.matches(f, root, st) {
			return a
		}
	}
	return nil
}
