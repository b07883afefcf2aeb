package sinks

import (
	"errors"
	"fmt"
	"testing"
)

func TestSplit(t *testing.T) {
	rejected := func(n int) error { return &RejectedError{Rejected: n, Err: errors.New("bad")} }
	skipped := func(n int, err error) error { return &SkippedError{Skipped: n, Err: err} }
	tests := []struct {
		name                      string
		err                       error
		stored, rejected, skipped int
		settled                   bool
	}{
		{"written", nil, 10, 0, 0, true},
		{"transient", errors.New("connection refused"), 0, 0, 0, false},
		{"failed", &FailedError{Err: errors.New("401")}, 0, 0, 0, false},
		{"rejected", rejected(3), 7, 3, 0, true},
		{"rejected, wrapped", fmt.Errorf("sink: %w", rejected(3)), 7, 3, 0, true},
		{"skipped", skipped(4, errors.New("down")), 6, 0, 4, true},
		{"skipped all", skipped(10, errors.New("down")), 0, 0, 10, true},
		{"skipped and rejected", skipped(4, fmt.Errorf("down; %w", rejected(3))), 3, 3, 4, true},
		{"too many rejected", rejected(1000), 0, 10, 0, true},
		{"too many skipped after rejected", skipped(1000, rejected(3)), 0, 3, 7, true},
		{"negative counts", skipped(-5, rejected(-2)), 10, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, rej, skip, settled := Split(tt.err, 10)
			if stored != tt.stored || rej != tt.rejected || skip != tt.skipped || settled != tt.settled {
				t.Errorf("Split = %d stored, %d rejected, %d skipped, settled %v; want %d, %d, %d, %v",
					stored, rej, skip, settled, tt.stored, tt.rejected, tt.skipped, tt.settled)
			}
		})
	}
}
