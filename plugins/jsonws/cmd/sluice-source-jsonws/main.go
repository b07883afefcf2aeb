// Command sluice-source-jsonws is the generic JSON-over-WebSocket source
// plugin. Started by the agent it serves the plugin protocol; with
// -sample it maps sample messages offline (see the jsonws README).
package main

import (
	"os"
	"time"

	"github.com/sluicehq/sluice/plugins/jsonws"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// stopWait bounds the wait for the source after the host's shutdown,
// inside the 2 seconds go-plugin gives a plugin before it kills it.
const stopWait = 1500 * time.Millisecond

func main() {
	if len(os.Args) > 1 {
		os.Exit(jsonws.SampleMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	src := jsonws.New()
	sdk.Serve(src)
	// The shutdown stopped the server, not Run: let it finish and write
	// its closing stats line.
	src.Wait(stopWait)
}
