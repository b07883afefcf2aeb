package synth_test

import (
	"testing"

	"github.com/sluicehq/sluice/plugins/sdk"
	"github.com/sluicehq/sluice/plugins/sdk/sdktest"
	"github.com/sluicehq/sluice/plugins/synth"
)

// The synthetic source keeps the plugin contract: config errors named,
// declared points, resume from its position, a clean stop.
func TestContract(t *testing.T) {
	sdktest.Check(t, func() sdk.Source { return synth.New() }, sdktest.Contract{
		Config: `{"symbols":["AAA","BBB"],"rate":2000}`,
		Invalid: []sdktest.Invalid{
			{Config: `{"measurement":"","symbols":[],"rate":-1,"repeat":0}`, Keys: []string{"measurement", "symbols", "rate", "repeat"}},
			{Config: `{"rate":"fast","count":-1,"start":"monday","symbols":["A",1]}`, Keys: []string{"rate", "count", "start", "symbols[1]"}},
		},
	})
}
