// Command sluice-source-synth is the synthetic source plugin.
package main

import (
	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/synth"
)

func main() { sdk.Serve(synth.New()) }
