package influxdb

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Reading InfluxDB's answers to a write. Pure functions of the response,
// so that every body format is table-tested without a server.

// defaultRetryAfter is the wait asked for on a 429 or 503 that does not
// say how long.
const defaultRetryAfter = 5 * time.Second

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date, relative to now. A date in the past means no wait.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultRetryAfter
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return defaultRetryAfter
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			return 0
		}
		return d
	}
	return defaultRetryAfter
}

// rejection is what a 400 (or 422) body says about refused points.
type rejection struct {
	// msg is the server's error message (the JSON "error" or "message",
	// else the body).
	msg string
	// pointLevel reports that the message is about points, not about the
	// request as a whole (a missing database, a bad precision...).
	pointLevel bool
	// exact are refused lines the server quoted whole (3.x original_line).
	exact []string
	// quoted are the tails of msg after each "unable to parse '": the
	// refused line followed by "': reason...". The line itself may
	// contain "': ", so matchQuoted resolves them against the batch.
	quoted []string
	// numbers are 1-based line numbers of refused lines in the body.
	numbers []int
	// dropped is the N of 1.x's "dropped=N", or -1.
	dropped int
	// partial is 1.x's "partial write: ..." form, whose server wrote every
	// point the message does not account for.
	partial bool
}

var (
	lineNumberRE = regexp.MustCompile(`error (?:parsing|writing) line (\d+)`)
	droppedRE    = regexp.MustCompile(`dropped=(\d+)\s*$`)
)

// pointLevelMarkers are phrases InfluxDB 1.x, 2.x, Cloud (IOx) and 3.x
// use when some points, rather than the request, were refused.
var pointLevelMarkers = []string{
	"partial write",
	"unable to parse",
	"field type conflict",
	"beyond retention policy",
	"error parsing line",
	"error writing line",
	"failed to parse line protocol",
	"dropped=",
}

const unableToParse = "unable to parse '"

// parseRejection reads a 400/422 write response body.
func parseRejection(body []byte) rejection {
	r := rejection{dropped: -1}
	var j struct {
		Error      string `json:"error"`
		Message    string `json:"message"`
		Line       *int   `json:"line"`
		LineErrors []struct {
			Index int `json:"index"`
		} `json:"line_errors"`
		Data json.RawMessage `json:"data"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &j) == nil {
		r.msg = j.Error
		if j.Message != "" {
			if r.msg != "" {
				r.msg += ": "
			}
			r.msg += j.Message
		}
		if j.Line != nil && *j.Line > 0 {
			r.numbers = append(r.numbers, *j.Line)
		}
		for _, le := range j.LineErrors {
			if le.Index > 0 {
				r.numbers = append(r.numbers, le.Index)
			}
		}
		r.addData(j.Data)
	} else {
		r.msg = string(trimmed)
	}

	lower := strings.ToLower(r.msg)
	r.pointLevel = len(r.numbers) > 0 || len(r.exact) > 0
	for _, m := range pointLevelMarkers {
		if strings.Contains(lower, m) {
			r.pointLevel = true
			break
		}
	}
	r.partial = strings.HasPrefix(lower, "partial write")
	if m := droppedRE.FindStringSubmatch(r.msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			r.dropped = n
		}
	}
	for _, m := range lineNumberRE.FindAllStringSubmatch(r.msg, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			r.numbers = append(r.numbers, n)
		}
	}
	rest := r.msg
	for {
		i := strings.Index(rest, unableToParse)
		if i < 0 {
			break
		}
		rest = rest[i+len(unableToParse):]
		r.quoted = append(r.quoted, rest)
	}
	return r
}

// addData reads InfluxDB 3's per-line details, an object or an array of
// {original_line, line_number, error_message}.
func (r *rejection) addData(raw json.RawMessage) {
	type lineError struct {
		OriginalLine *string `json:"original_line"`
		LineNumber   int     `json:"line_number"`
	}
	var list []lineError
	if json.Unmarshal(raw, &list) != nil {
		var one lineError
		if json.Unmarshal(raw, &one) != nil {
			return
		}
		list = []lineError{one}
	}
	for _, le := range list {
		if le.OriginalLine != nil {
			r.exact = append(r.exact, *le.OriginalLine)
		} else if le.LineNumber > 0 {
			r.numbers = append(r.numbers, le.LineNumber)
		}
	}
}

// matchQuoted finds which known line a quoted tail starts with: the
// shortest prefix, ending just before a "': ", that is a key of lines.
func matchQuoted(tail string, lines map[string]int) (int, bool) {
	for off := 0; ; {
		j := strings.Index(tail[off:], "': ")
		if j < 0 {
			// 1.x ends the message with " dropped=N" after the last
			// reason, never right after the line, so a tail without
			// "': " has no complete line in it.
			return 0, false
		}
		if i, ok := lines[tail[:off+j]]; ok {
			return i, true
		}
		off += j + 1
	}
}

// bodyMessage returns the server's error message from any error body.
func bodyMessage(body []byte) string {
	return parseRejection(body).msg
}
