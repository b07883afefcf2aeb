// Command sluice-source-jsonws is the generic JSON-over-WebSocket source
// plugin. Started by the agent it serves the plugin protocol; with
// -sample it maps sample messages offline (see the jsonws README).
package main

import (
	"os"

	"github.com/sluicehq/sluice/plugins/jsonws"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func main() {
	if len(os.Args) > 1 {
		os.Exit(jsonws.SampleMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	sdk.Serve(jsonws.New())
}
