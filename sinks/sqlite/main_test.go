package sqlite

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes what it opens; a connection or statement left behind
// shows up here as a leaked database/sql goroutine.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
