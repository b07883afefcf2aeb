package binancesim

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the Sim starts (connections, pings, replays, fault
// timers) must be gone once Close returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
