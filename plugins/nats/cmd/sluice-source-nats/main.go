// Command sluice-source-nats is the NATS JetStream source plugin.
package main

import (
	natssource "github.com/sluicehq/sluice/plugins/nats"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func main() { sdk.Serve(natssource.New()) }
