package jsonws

import (
	"bytes"
	"context"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// heartbeatNote is what a sample message only an alive rule matched made.
const heartbeatNote = "heartbeat (an alive rule matched: it proves the feed alive)"

// Sample maps each sample message with the config's rules, all as
// received at received, so that a mapping can be developed offline
// (`sluice validate -sample`). Only the rules have to make sense, but the
// whole config is checked, secrets aside (they are not read), so that
// what passes here passes Configure too.
func (s *Source) Sample(_ context.Context, req sdk.ConfigureRequest, messages [][]byte, received time.Time) ([]sdk.SampleResult, error) {
	_, set, err := parseConfig(req, nil)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.SampleResult, len(messages))
	for i, msg := range messages {
		points, errs, matched, alive := set.mapper.mapMessage(bytes.TrimSpace(msg), received, nil)
		r := sdk.SampleResult{Points: points}
		for _, e := range errs {
			r.Errors = append(r.Errors, e.Error())
		}
		switch {
		case len(points) > 0 || len(errs) > 0:
		case matched:
			r.Note = "a rule matched but made no point"
		case alive:
			r.Note = heartbeatNote
		default:
			r.Unmatched = true
		}
		out[i] = r
	}
	return out, nil
}
