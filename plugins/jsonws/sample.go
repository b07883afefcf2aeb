package jsonws

import (
	"bufio"
	"bytes"
	"context"
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
// offline. config is the feed's `config:` block as JSON; the whole block
// is checked, secrets aside, so that what passes here passes Configure
// too. See sample for how the messages are taken.
func Sample(config json.RawMessage, r io.Reader, received time.Time) ([]SampleMessage, error) {
	_, set, err := parseConfig(sdk.ConfigureRequest{Config: config, ValidateOnly: true}, nil)
	if err != nil {
		return nil, err
	}
	var lines []int
	var msgs [][]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSampleLine)
	for line := 1; sc.Scan(); line++ {
		msg := bytes.TrimSpace(sc.Bytes())
		if len(msg) == 0 || msg[0] == '#' {
			continue
		}
		lines, msgs = append(lines, line), append(msgs, slices.Clone(msg))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the sample: %w", err)
	}
	return set.sample(lines, msgs, received), nil
}

// Sample is sdk.Sampler: `sluice validate -sample` sends the messages of
// a sample file through the plugin protocol, and prints what each made.
func (s *Source) Sample(_ context.Context, req sdk.ConfigureRequest, messages [][]byte, received time.Time) ([]sdk.SampleResult, error) {
	_, set, err := parseConfig(req, nil)
	if err != nil {
		return nil, err
	}
	lines := make([]int, len(messages))
	for i := range lines {
		lines[i] = i + 1
	}
	out := make([]sdk.SampleResult, len(messages))
	for i, m := range set.sample(lines, messages, received) {
		out[i] = m.result()
	}
	return out, nil
}

// result is m as the protocol carries it.
func (m SampleMessage) result() sdk.SampleResult {
	r := sdk.SampleResult{Points: m.Points}
	for _, e := range m.Errors {
		r.Errors = append(r.Errors, e.Error())
	}
	r.Note, r.Unmatched = m.note()
	return r
}

// sample takes the messages as one connection's, in order: what rules
// remember from one is there for the next. A message the config's
// answers or heartbeat.reply recognise is reported as such (with the
// reply an answer would send), not mapped, as on a connection.
func (set *settings) sample(lines []int, msgs [][]byte, received time.Time) []SampleMessage {
	var out []SampleMessage
	st := NewState()
	for i, msg := range msgs {
		msg = bytes.TrimSpace(msg)
		line := lines[i]
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
	return out
}

// note says what a message that gave no point (or only a reply) was, for
// people; unmatched when nothing in the config applies to it. A message
// with points or errors has none.
func (m SampleMessage) note() (note string, unmatched bool) {
	switch {
	case m.Answered && len(m.Errors) == 0:
		return "answered: " + string(m.Reply), false
	case m.HBReply:
		return "a reply to our heartbeat", false
	case m.Refusal != "" && !m.Matched:
		return "a refusal: " + m.Refusal + ".expect.fail matches it, which would stop the feed", false
	case m.Ack != "" && !m.Matched && !m.Remembered && !m.Alive && len(m.Errors) == 0:
		return "an ack " + m.Ack + " waits for", false
	case m.Reconnect:
		return "the server asks to reconnect (reconnect.when): the connection would be replaced", false
	case !m.Matched && m.Remembered && len(m.Errors) == 0:
		return "remembered (a remember rule matched)", false
	case !m.Matched && m.Alive && len(m.Errors) == 0:
		return heartbeatNote, false
	case !m.Matched && len(m.Errors) == 0:
		return "", true
	}
	return "", false
}

// heartbeatNote is what a sample message only an alive rule matched made.
const heartbeatNote = "heartbeat (an alive rule matched: it proves the feed alive)"

// WriteSample prints Sample's results as `sluice validate -sample` does
// (sdk.WriteSample): per message its line, then one line per point and
// per error, or what it was if it made none; then a summary.
func WriteSample(w io.Writer, msgs []SampleMessage) error {
	lines := make([]int, len(msgs))
	results := make([]sdk.SampleResult, len(msgs))
	for i, m := range msgs {
		lines[i], results[i] = m.Line, m.result()
	}
	return sdk.WriteSample(w, lines, results)
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
