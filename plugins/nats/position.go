package nats

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
)

// position is what the feed checkpoints: the stream sequence of the last
// message emitted, and which stream that counts in. A stream deleted and
// made again under the same name starts its sequences again; its
// creation time tells the two apart.
type position struct {
	V       int       `json:"v"`
	Stream  string    `json:"stream"`
	Created time.Time `json:"created"`
	Seq     uint64    `json:"seq"`
}

const positionVersion = 1

func (p position) encode() sluice.Position {
	p.V = positionVersion
	b, _ := json.Marshal(p)
	return b
}

// decodePosition parses a position; nil decodes as the zero position.
func decodePosition(b sluice.Position) (position, error) {
	var p position
	if len(b) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("position %q: %w", b, err)
	}
	if p.V != positionVersion {
		return position{}, fmt.Errorf("position version %d, want %d", p.V, positionVersion)
	}
	return p, nil
}
