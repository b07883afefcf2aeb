// Command sluice is the Sluice agent: `sluice run`, `validate`, `plugins`,
// `status`, `reload`, `tap` and `version`. See README.md.
package main

import (
	"bytes"
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
	"github.com/mattn/go-isatty"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/sdnotify"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

// version is set by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: sluice <command> [flags]

commands:
  run          run the agent
  validate     check the config, and ask each feed's plugin to check its own;
               -sample FILE [-feed NAME] prints the points a feed's rules make of FILE
  plugins      list the plugins found in plugin_dir
  status       show the running agent's feeds and sinks (-json for the raw JSON)
  reload       make the running agent re-read its config and apply the feeds' changes
  tap FEED     print a running feed's points as they flow (-measurement M for one measurement)
  version      print the version

flags:
  -config FILE   the main config file (default /etc/sluice/sluice.yaml)
  -addr H:P      status, reload, tap: reach the agent over TCP at H:P instead of
                 its http.socket (reload and tap need http.token_file there)

status, reload and tap reach the agent on the unix socket the config names
(http.socket), else on http.listen with the token in http.token_file.
`

// statusLineEvery is how often `sluice run` on a terminal prints its
// status line.
const statusLineEvery = 5 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "sluice %s (plugin protocol source.v1)\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run", "validate", "plugins", "status", "reload", "tap":
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n%s", cmd, usage)
		return 2
	}
	fs := flag.NewFlagSet("sluice "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "main config file")
	var addr, measurement, sample, sampleFeed string
	var asJSON bool
	switch cmd {
	case "status", "reload", "tap":
		fs.StringVar(&addr, "addr", "", "reach the agent over TCP at this host:port (default: its http.socket, else http.listen)")
	}
	switch cmd {
	case "status":
		fs.BoolVar(&asJSON, "json", false, "print the status JSON as the agent sends it")
	case "tap":
		fs.StringVar(&measurement, "measurement", "", "only points of this measurement")
	case "validate":
		fs.StringVar(&sample, "sample", "", "a file of sample messages: print the points a feed's rules make of them")
		fs.StringVar(&sampleFeed, "feed", "", "with -sample: the feed whose rules to use")
	}
	// Flags may come before and after positional arguments (tap FEED -measurement M).
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	wantArgs := 0
	if cmd == "tap" {
		wantArgs = 1
	}
	if len(positional) != wantArgs {
		fmt.Fprintf(stderr, "sluice %s: unexpected arguments %q\n%s", cmd, positional, usage)
		return 2
	}

	switch cmd {
	case "status":
		return statusCmd(*cfgPath, addr, asJSON, stdout, stderr)
	case "reload":
		return reloadCmd(*cfgPath, addr, stdout, stderr)
	case "tap":
		return tapCmd(*cfgPath, addr, positional[0], measurement, stdout, stderr)
	}

	cfg, err := config.Load(*cfgPath, all.Types.Configs())
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	journal := underSystemd(os.Getenv)
	log, err := newLogger(cfg.Log, stderr, journal)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "warning", w)
	}
	switch cmd {
	case "validate":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exe, _ := os.Executable()
		dir, note, err := agent.ValidatePluginDir(cfg, exe)
		if err != nil {
			printErrors(stderr, err)
			return 1
		}
		if note != "" {
			fmt.Fprintf(stderr, "sluice: %s\n", note)
		}
		cfg.PluginDir = dir
		if err := agent.ValidateFeeds(ctx, cfg, log); err != nil {
			printErrors(stderr, err)
			return 1
		}
		if f := cfg.HTTP.TokenFile; f != "" {
			if _, err := agent.ReadToken(f); err != nil {
				printErrors(stderr, &config.Error{File: cfg.File, Key: "http.token_file", Msg: err.Error(), Err: err})
				return 1
			}
		}
		if sample != "" {
			if err := agent.SampleFeed(ctx, cfg, sampleFeed, sample, stdout, log); err != nil {
				fmt.Fprintf(stderr, "sluice: %v\n", err)
				return 1
			}
			return 0
		}
		fmt.Fprintf(stdout, "%s: ok (%d sinks, %d feeds)\n", cfg.File, len(cfg.Sinks), len(cfg.Feeds))
		return 0
	case "plugins":
		return listPlugins(cfg, log, stdout, stderr)
	}
	liveLine := !journal && isTerminal(stderr)
	return runAgent(cfg, log, stderr, liveLine)
}

// underSystemd reports whether the agent runs as a systemd service, whose
// output goes to the journal.
func underSystemd(getenv func(string) string) bool {
	return getenv("JOURNAL_STREAM") != "" || getenv("INVOCATION_ID") != ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// printErrors prints each joined error on its own line, safe for a
// terminal.
func printErrors(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			printErrors(w, e)
		}
		return
	}
	fmt.Fprintln(w, printableLines(err.Error()))
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

func statusCmd(cfgPath, flagAddr string, asJSON bool, stdout, stderr io.Writer) int {
	ep, err := agentEndpoint(cfgPath, flagAddr)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c := &agentClient{ep: ep}
	st, err := c.fetchStatus(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sluice status: %s\n", printableLines(err.Error()))
		return 1
	}
	if asJSON {
		var b bytes.Buffer
		jsonEncoder(&b).Encode(st)
		stdout.Write(printableJSON(b.Bytes()))
		return 0
	}
	formatStatus(stdout, st)
	return 0
}

// reloadCmd exits 1 when the agent rejects the config, after printing
// why: systemd's ExecReload can run it, so that `systemctl reload` fails.
func reloadCmd(cfgPath, flagAddr string, stdout, stderr io.Writer) int {
	ep, err := agentEndpoint(cfgPath, flagAddr)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c := &agentClient{ep: ep}
	rr, err := c.requestReload(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "sluice reload: %s\n", printableLines(err.Error()))
		return 1
	}
	if !rr.OK {
		fmt.Fprintln(stderr, "reload rejected; the running config stays:")
		for _, e := range rr.Errors {
			fmt.Fprintln(stderr, printableLines(e))
		}
		return 1
	}
	fmt.Fprintln(stdout, formatReload(rr.ReloadResult))
	return 0
}

func tapCmd(cfgPath, flagAddr, feed, measurement string, stdout, stderr io.Writer) int {
	ep, err := agentEndpoint(cfgPath, flagAddr)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &agentClient{ep: ep}
	if err := c.tap(ctx, feed, measurement, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "sluice tap: %s\n", printableLines(err.Error()))
		return 1
	}
	return 0
}

// runAgent runs until SIGTERM or SIGINT, then drains; a second signal
// exits at once. SIGHUP reloads the config.
func runAgent(cfg *config.Config, log *slog.Logger, stderr io.Writer, liveLine bool) int {
	notifier, watchdog, nerr := sdnotify.FromEnv(os.Getenv, os.Getpid())
	sdnotify.UnsetEnv() // plugins must not talk to systemd as us
	if nerr != nil {
		log.Warn("systemd notification settings ignored", "error", nerr)
	}
	opts := agent.Options{Version: version}
	if notifier != nil {
		opts.Notifier = notifier
		opts.Watchdog = watchdog / 2
	}
	a := agent.New(cfg, log, opts)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	go func() {
		s := <-sigs
		log.Info("signal received: draining; send it again to exit at once", "signal", s.String())
		cancel()
		s = <-sigs
		log.Warn("second signal: exiting now without draining", "signal", s.String())
		plugin.CleanupClients()
		os.Exit(130)
	}()
	go func() {
		for {
			select {
			case <-hups:
				log.Info("SIGHUP: reloading the config")
				a.Reload(ctx) // logs what it did, or why not
			case <-ctx.Done():
				return
			}
		}
	}()
	if liveLine {
		go printStatusLines(ctx, a, stderr)
	}
	if err := a.Run(ctx); err != nil {
		log.Error("sluice stopped with an error", "error", err)
		return 1
	}
	log.Info("sluice stopped")
	return 0
}

// printStatusLines prints the status line every statusLineEvery once the
// agent is ready, until ctx ends.
func printStatusLines(ctx context.Context, a *agent.Agent, w io.Writer) {
	select {
	case <-a.Ready():
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(statusLineEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			fmt.Fprintln(w, formatStatusLine(a.Status()))
		case <-ctx.Done():
			return
		}
	}
}
