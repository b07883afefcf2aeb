package sdktest

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// Plugin is a source served in-process behind the real gRPC boundary: the
// SDK's server on one side of a Unix socket, the agent's client
// (sdk.Client, embedded) on the other, as the agent reaches a plugin
// process.
type Plugin struct {
	*sdk.Client
	client  *plugin.GRPCClient
	runs    interface{ WaitRuns(time.Duration) bool }
	stopped bool
}

// Serve serves src and returns the host's view of it. It stops when the
// test ends, if Stop has not stopped it before.
func Serve(t testing.TB, src sdk.Source) *Plugin {
	t.Helper()
	// go-plugin logs its plumbing at debug level to stderr.
	defer func(w io.Writer) { hclog.DefaultOutput = w }(hclog.DefaultOutput)
	hclog.DefaultOutput = io.Discard
	pl := sdk.PluginFor(src)
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{sdk.PluginName: pl})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		client.Close()
		t.Fatalf("sdktest: dispense: %v", err)
	}
	p := &Plugin{Client: raw.(*sdk.Client), client: client, runs: pl.(interface{ WaitRuns(time.Duration) bool })}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

// ErrStuck is what Stop returns when the source's Run did not return
// within its timeout.
var ErrStuck = errors.New("the source's Run did not return")

// Stop stops the plugin as the agent does: once every Run has returned
// (a stream the host cancelled ends its Run), it closes the connection,
// which stops the server. It waits at most timeout for Run; a Run still
// going is abandoned, and Stop returns ErrStuck.
func (p *Plugin) Stop(timeout time.Duration) error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	var err error
	if !p.runs.WaitRuns(timeout) {
		err = fmt.Errorf("%w within %v of its stream's end", ErrStuck, timeout)
	}
	p.client.Close()
	return err
}
