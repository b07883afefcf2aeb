// Command sluice-source-jsonws is the generic JSON-over-WebSocket source
// plugin. The agent starts it; `sluice validate -sample` maps sample
// messages with it offline (see the jsonws README).
package main

import (
	"github.com/sluicehq/sluice/plugins/jsonws"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func main() { sdk.Serve(jsonws.New()) }
