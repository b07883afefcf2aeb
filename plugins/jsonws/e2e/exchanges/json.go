package exchanges

import (
	"encoding/json"
	"strings"
)

// str is s as a JSON string.
func str(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// obj parses a client's JSON message into a generic object; nil if it is
// not one.
func obj(b []byte) map[string]any {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

// chunks splits trades into runs of at most n.
func chunks(trades []Trade, n int) [][]Trade {
	var out [][]Trade
	for len(trades) > n {
		out = append(out, trades[:n])
		trades = trades[n:]
	}
	if len(trades) > 0 {
		out = append(out, trades)
	}
	return out
}
