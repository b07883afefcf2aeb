package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// Slot is one lease: replica N (from 0) of a feed.
type Slot struct {
	Feed string
	N    int
}

func (s Slot) String() string { return s.Feed + "#" + strconv.Itoa(s.N) }

// Bucket names of a cluster.
func leasesBucket(cluster string) string    { return "sluice_" + cluster + "_leases" }
func positionsBucket(cluster string) string { return "sluice_" + cluster + "_positions" }

const (
	agentPrefix = "agent."
	leasePrefix = "lease."
)

// escapeName makes a feed or agent name one KV key token. Names hold
// letters, digits, '_', '-' and '.'; a dot would split the token, so it
// is written "=2E" ('=' is allowed in keys and never in names).
func escapeName(name string) string { return strings.ReplaceAll(name, ".", "=2E") }

func unescapeName(tok string) string { return strings.ReplaceAll(tok, "=2E", ".") }

func agentKey(name string) string    { return agentPrefix + escapeName(name) }
func leaseKey(s Slot) string         { return leasePrefix + escapeName(s.Feed) + "." + strconv.Itoa(s.N) }
func positionKey(feed string) string { return escapeName(feed) }

// parseLeaseKey is the slot a lease key names.
func parseLeaseKey(key string) (Slot, bool) {
	rest, ok := strings.CutPrefix(key, leasePrefix)
	if !ok {
		return Slot{}, false
	}
	feed, n, ok := strings.Cut(rest, ".")
	if !ok || feed == "" {
		return Slot{}, false
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 || strconv.Itoa(i) != n {
		return Slot{}, false
	}
	return Slot{Feed: unescapeName(feed), N: i}, true
}

// maxValueBytes bounds what the agent decodes of a KV value: the bucket
// is shared, and a value is never this large unless something else
// wrote it.
const maxValueBytes = 1 << 20

// presence is the value of an agent's key: it is alive, and runs feeds
// from this list.
type presence struct {
	Agent    string    `json:"agent"`
	Instance string    `json:"instance"` // this run of the agent
	Since    time.Time `json:"since"`
	Feeds    []string  `json:"feeds"`
}

// lease is the value of a lease key: who holds the slot, since when.
type lease struct {
	Agent    string    `json:"agent"`
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`
}

// storedPosition is the value of a feed's key in the positions bucket.
type storedPosition struct {
	Position sluice.Position `json:"position"`
	Agent    string          `json:"agent"`
	At       time.Time       `json:"at"`
}

var errValue = errors.New("not a value an agent wrote")

// decodeValue parses a KV value of one of the types above.
func decodeValue[T presence | lease | storedPosition](b []byte) (T, error) {
	var v T
	if len(b) > maxValueBytes {
		return v, fmt.Errorf("%w: %d bytes", errValue, len(b))
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: %v", errValue, err)
	}
	switch x := any(v).(type) {
	case presence:
		if x.Agent == "" || x.Instance == "" {
			return v, fmt.Errorf("%w: no agent", errValue)
		}
	case lease:
		if x.Agent == "" || x.Instance == "" {
			return v, fmt.Errorf("%w: no holder", errValue)
		}
	}
	return v, nil
}

func encodeValue(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the types above always encode
	}
	return b
}
