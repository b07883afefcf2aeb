package live

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its clients and its sinks. The node leaves one
// goroutine of its own for up to a second after it stops: it waits
// before unsubscribing an emptied channel from the broker. A test client
// (centrifuge-go) leaves one per request sent while it was reconnecting:
// it waits for the reply up to the client's ReadTimeout, also after the
// client is closed (goleak's own wait is shorter on a loaded machine).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/centrifugal/centrifuge.(*Node).unsubscribeFromBrokerWhenEmpty.func1"),
		goleak.IgnoreAnyFunction("github.com/centrifugal/centrifuge-go.(*Client).sendAsync.func1"))
}
