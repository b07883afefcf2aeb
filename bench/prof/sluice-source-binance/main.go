// Command sluice-source-binance is the Binance plugin built for profiling
// by the benchmark: the real plugin, plus a CPU and allocation profile of
// a window of its run (see bench/internal/profile).
package main

import (
	"github.com/sluicehq/sluice/bench/internal/profile"
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func main() {
	profile.Start("plugin")
	sdk.Serve(binance.New(sdk.Logger()))
}
