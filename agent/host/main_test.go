package host

import (
	"os"
	"testing"

	"github.com/sluicehq/sluice/internal/testbin"
)

// The tests launch the real plugin binaries (synth, and the test-only
// envdump), built once.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
