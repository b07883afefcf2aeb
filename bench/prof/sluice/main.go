// Command sluice is the agent built for profiling by the benchmark: `run
// -config FILE` as the real command does it (without systemd
// notification or reload on SIGHUP), plus a CPU and allocation profile of
// a window of the run (see bench/internal/profile).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/bench/internal/profile"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

func main() {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := fs.String("config", "", "config file")
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: sluice run -config FILE")
		os.Exit(2)
	}
	fs.Parse(os.Args[2:])
	cfg, err := config.Load(*path, all.Types.Configs())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stopProfile := profile.Start("agent")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = agent.New(cfg, log, agent.Options{Version: "bench"}).Run(ctx)
	stopProfile()
	if err != nil {
		log.Error("sluice stopped with an error", "error", err)
		os.Exit(1)
	}
}
