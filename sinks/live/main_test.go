package live

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its clients and its sinks. The node leaves one
// goroutine of its own for up to a second after it stops: it waits
// before unsubscribing an emptied channel from the broker.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/centrifugal/centrifuge.(*Node).unsubscribeFromBrokerWhenEmpty.func1"))
}
