package nats

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes the connections it opens and stops its servers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
