// Command sluice-source-binance is the Binance market-data source plugin.
// The agent starts it; run by hand it only says so.
package main

import (
	"github.com/sluicehq/sluice/plugins/binance"
	"github.com/sluicehq/sluice/plugins/sdk"
)

func main() {
	sdk.Serve(binance.New(sdk.Logger()))
}
