// Command sluice is the Sluice agent: `sluice run`, `validate`, `plugins`
// and `version`. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/config"
)

// version is set by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: sluice <command> [-config FILE]

commands:
  run        run the agent
  validate   check the config, and ask each feed's plugin to check its own
  plugins    list the plugins found in plugin_dir
  version    print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("sluice "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "main config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "sluice %s (plugin protocol source.v1)\n", version)
		return 0
	case "run", "validate", "plugins":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n%s", cmd, usage)
		return 2
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	switch cmd {
	case "validate":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := agent.ValidateFeeds(ctx, cfg, log); err != nil {
			printErrors(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d sinks, %d feeds)\n", cfg.File, len(cfg.Sinks), len(cfg.Feeds))
		return 0
	case "plugins":
		return listPlugins(cfg, log, stdout, stderr)
	}
	return runAgent(cfg, log)
}

// printErrors prints each joined error on its own line.
func printErrors(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			printErrors(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

func listPlugins(cfg *config.Config, log *slog.Logger, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infos, err := agent.DescribePlugins(ctx, cfg.PluginDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tSHA256\tPATH")
	status := 0
	for _, pi := range infos {
		if pi.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s (error: %v)\n", pi.Name, pi.Path, pi.Err)
			status = 1
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\tsource.v%d\t%s\t%s\n", pi.Name, pi.Version, pi.Protocol, pi.SHA256, pi.Path)
	}
	tw.Flush()
	return status
}

// runAgent runs until SIGTERM or SIGINT, then drains; a second signal
// exits at once.
func runAgent(cfg *config.Config, log *slog.Logger) int {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Info("signal received: draining; send it again to exit at once", "signal", s.String())
		cancel()
		s = <-sigs
		log.Warn("second signal: exiting now without draining", "signal", s.String())
		plugin.CleanupClients()
		os.Exit(130)
	}()
	if err := agent.New(cfg, log).Run(ctx); err != nil {
		log.Error("sluice stopped with an error", "error", err)
		return 1
	}
	log.Info("sluice stopped")
	return 0
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
