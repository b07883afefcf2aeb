package dashtest

import (
	"testing"

	"github.com/sluicehq/sluice/internal/testbin"
	"go.uber.org/goleak"
)

// TestMain builds the sluice and plugin binaries (for the agent that fills
// the stores the dashboards are queried against), runs the tests and
// checks for leaked goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(withBinaries{m}) }

// withBinaries runs the tests inside testbin.Main.
type withBinaries struct{ m *testing.M }

func (w withBinaries) Run() int { return testbin.Main(w.m) }
