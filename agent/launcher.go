package agent

import (
	"context"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// launcher starts a feed's plugin process. The agent's is hostLauncher
// (host.Launch: checks, pins, go-plugin); a feed's supervision is the
// same over any other, which is how its restart and failure logic is
// tested without building plugins.
type launcher interface {
	// Launch starts the plugin b. An error wrapping *host.ChecksumError
	// or *host.TrustError is one no restart can fix.
	Launch(ctx context.Context, b host.Binary, opts host.LaunchOptions) (process, error)
}

// process is one running plugin process, as a feed's supervisor uses it.
type process interface {
	Source() source
	Pid() int
	// Kill stops the process; it is idempotent.
	Kill()
}

// source is the host half of the plugin protocol: sdk.Client's methods.
type source interface {
	Describe(ctx context.Context) (sdk.Info, error)
	Configure(ctx context.Context, req sdk.ConfigureRequest) ([]sluice.Measurement, error)
	Stream(ctx context.Context, opts sdk.StreamOptions, fn sdk.BatchHandler) error
}

// hostLauncher starts plugins with host.Launch.
type hostLauncher struct{}

func (hostLauncher) Launch(ctx context.Context, b host.Binary, opts host.LaunchOptions) (process, error) {
	p, err := host.Launch(ctx, b, opts)
	if err != nil {
		return nil, err
	}
	return hostProcess{p}, nil
}

// hostProcess is a *host.Process seen as a process.
type hostProcess struct{ p *host.Process }

func (h hostProcess) Source() source { return h.p.Source }
func (h hostProcess) Pid() int       { return h.p.Pid }
func (h hostProcess) Kill()          { h.p.Kill() }

var (
	_ launcher = hostLauncher{}
	_ process  = hostProcess{}
	_ source   = (*sdk.Client)(nil)
)
