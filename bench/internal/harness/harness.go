// Package harness holds what the benchmark programs share to drive the
// real agent: the agent's process (started, its log kept, its status
// polled, stopped), a free loopback address, polling with a limit, and
// the simulated exchange's trade rate calibrated.
package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/plugins/binance/binancesim"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// FreeAddr is a loopback address with a port free a moment ago.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitUntil calls cond every interval until it holds, and fails when
// limit passes or ctx ends first.
func WaitUntil(ctx context.Context, limit, every time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("gave up after %v", limit)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// statusClient's limit is generous: an agent at the top of a benchmark's
// load answers slowly, and a status missed is a stage's figures lost.
var statusClient = &http.Client{Timeout: 5 * time.Second}

// Status is the /api/v1/status of the agent whose HTTP API listens on
// addr; false while it does not answer.
func Status(addr string) (agent.Status, bool) {
	resp, err := statusClient.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		return agent.Status{}, false
	}
	defer resp.Body.Close()
	var st agent.Status
	b, err := io.ReadAll(resp.Body)
	return st, err == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(b, &st) == nil
}

// CalibrateTradeRate is the TradeRate option that makes the simulator
// generate about want spot trades a second over o's symbols: its rate is
// approximate, so the option is measured on 5 s of o's own seed first.
func CalibrateTradeRate(o binancesim.Options, want float64) float64 {
	const span = 5 * time.Second
	o.HistoryCap = 1 // only the count is needed
	sim := binancesim.New(o)
	defer sim.Close()
	sim.Advance(span)
	var n int64
	for _, s := range o.Symbols[market.Spot] {
		n += sim.TradeCount(market.Spot, s)
	}
	if n == 0 {
		return o.TradeRate
	}
	return o.TradeRate * want * span.Seconds() / float64(n)
}

// ChildEnv is this process's environment without SLUICE_* variables
// (such as SLUICE_INFLUXD), for the agents a benchmark starts: the agent
// refuses any it does not know.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Commit is the checkout's short commit, "(dirty)" after it when the
// work tree has changes; "unknown" outside git.
func Commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet").Run() != nil {
		c += " (dirty)"
	}
	return c
}

// Machine is the CPUs, their model and the memory, as a result file's
// header names them: "2 CPUs, AMD EPYC 7B13, 23.5 GiB, linux/amd64".
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimLeft(rest, " \t:"))
				break
			}
		}
	}
	mem := "unknown memory"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s, %s/%s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH)
}

// GoBuild builds pkg (a package path, from the repository root) into
// dir/name: without cgo, a static executable as `make build` makes it,
// or, when tags is not empty, with cgo and those build tags. The file and
// its directory are then made 0755: the agent refuses a plugin others can
// change, and a umask of 002 would leave them group-writable.
func GoBuild(dir, name, pkg, tags string) error {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-tags", tags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if tags != "" {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		return err
	}
	return os.Chmod(filepath.Dir(out), 0o755)
}

// AgentPkgs are the packages of the agent and the Binance plugin, or of
// their profiling builds (bench/prof).
func AgentPkgs(profiled bool) (agent, plugin string) {
	if profiled {
		return "./bench/prof/sluice", "./bench/prof/sluice-source-binance"
	}
	return "./agent/cmd/sluice", "./plugins/binance/cmd/sluice-source-binance"
}
