package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// ValidateFeeds asks each feed's plugin to check the feed's config, then
// checks that feeds declaring one measurement declare the same uniqueness
// key (see keyRegistry), and returns every problem, each naming the file
// and key, joined.
func ValidateFeeds(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return &config.Error{File: cfg.File, Key: "plugin_dir", Msg: err.Error()}
	}
	scrub := configSecrets(cfg)
	log = slog.New(scrub.Handler(log.Handler()))
	var errs []error
	declared := make(map[string][]sluice.Measurement)
	for _, name := range sortedKeys(cfg.Feeds) {
		fc := cfg.Feeds[name]
		fail := func(key, msg string) {
			errs = append(errs, &config.Error{File: fc.File, Key: key, Msg: scrub.String(msg)})
		}
		bin, ok := plugins[fc.Plugin]
		if !ok {
			fail("feeds."+name+".plugin", fmt.Sprintf("plugin %q not found in %s (found: %s)",
				fc.Plugin, cfg.PluginDir, strings.Join(host.Names(plugins), ", ")))
			continue
		}
		ms, err := validateFeedConfig(ctx, cfg, bin, name, fc, log)
		var ces sdk.ConfigErrors
		var sumErr *host.ChecksumError
		var trustErr *host.TrustError
		switch {
		case err == nil:
			declared[name] = ms
		case errors.As(err, &sumErr):
			errs = append(errs, &config.Error{File: cfg.File, Key: "plugins." + fc.Plugin + ".sha256", Msg: err.Error()})
		case errors.As(err, &trustErr):
			errs = append(errs, &config.Error{File: cfg.File, Key: "plugin_dir", Msg: err.Error()})
		case !errors.As(err, &ces):
			fail("feeds."+name, err.Error())
		default:
			for _, ce := range ces {
				key := "feeds." + name + ".config"
				if ce.Key != "" {
					key += "." + ce.Key
				}
				fail(key, ce.Msg)
			}
		}
	}
	errs = append(errs, keyConflicts(cfg, declared)...)
	return errors.Join(errs...)
}

func validateFeedConfig(ctx context.Context, cfg *config.Config, bin host.Binary, name string, fc config.Feed, log *slog.Logger) ([]sluice.Measurement, error) {
	proc, err := host.Launch(ctx, bin, feedLaunch(cfg, fc, log.With("feed", name, "plugin", fc.Plugin)))
	if err != nil {
		return nil, err
	}
	defer proc.Kill()
	raw, err := json.Marshal(fc.Config)
	if err != nil {
		return nil, err
	}
	return proc.Source.Configure(ctx, sdk.ConfigureRequest{Feed: name, Config: raw, ValidateOnly: true})
}

// PluginInfo describes one discovered plugin binary.
type PluginInfo struct {
	sdk.Info
	Path     string
	SHA256   string
	Protocol int
	Err      error
}

// DescribePlugins launches every plugin in dir and asks who it is.
func DescribePlugins(ctx context.Context, dir string, log *slog.Logger) ([]PluginInfo, error) {
	plugins, err := host.Discover(dir)
	if err != nil {
		return nil, err
	}
	var out []PluginInfo
	for _, name := range host.Names(plugins) {
		bin := plugins[name]
		pi := PluginInfo{Path: bin.Path, Protocol: sdk.ProtocolVersion}
		pi.Name = name
		var proc *host.Process
		opts := host.LaunchOptions{Env: host.PluginEnv(os.Environ(), nil), Log: log.With("plugin", name)}
		if proc, pi.Err = host.Launch(ctx, bin, opts); pi.Err == nil {
			pi.SHA256 = proc.SHA256
			pi.Info, pi.Err = proc.Source.Describe(ctx)
			proc.Kill()
		}
		out = append(out, pi)
	}
	return out, nil
}

// SampleFeed shows what a feed's config makes of sample messages, offline:
// it starts the feed's plugin as validate does, hands it (through the
// protocol's Sample call, sdk.CapSample) the feed's config as loaded (env
// overrides and all) with the messages of sampleFile, one a line (blank
// lines and lines starting with # are skipped), and prints what each
// message made to stdout (sdk.WriteSample). It fails when a message had
// a mapping error. feed may be empty when exactly one feed's plugin can
// sample.
func SampleFeed(ctx context.Context, cfg *config.Config, feed, sampleFile string, stdout io.Writer, log *slog.Logger) error {
	log = slog.New(configSecrets(cfg).Handler(log.Handler()))
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return err
	}
	// sampler starts a feed's plugin and reports whether it can sample;
	// the caller kills what it returns.
	sampler := func(name string) (*host.Process, bool, error) {
		bin, ok := plugins[cfg.Feeds[name].Plugin]
		if !ok {
			return nil, false, fmt.Errorf("feed %s: plugin %q not found in %s", name, cfg.Feeds[name].Plugin, cfg.PluginDir)
		}
		proc, err := host.Launch(ctx, bin, feedLaunch(cfg, cfg.Feeds[name], log.With("feed", name)))
		if err != nil {
			return nil, false, err
		}
		info, err := proc.Source.Describe(ctx)
		return proc, err == nil && slices.Contains(info.Capabilities, sdk.CapSample), err
	}
	var proc *host.Process
	switch {
	case feed != "":
		if _, ok := cfg.Feeds[feed]; !ok {
			return fmt.Errorf("no feed %q in the config", feed)
		}
		p, ok, err := sampler(feed)
		if p != nil {
			defer p.Kill()
		}
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("feed %s: plugin %s cannot map sample messages", feed, cfg.Feeds[feed].Plugin)
		}
		proc = p
	default:
		var found []string
		for _, name := range sortedKeys(cfg.Feeds) {
			p, ok, err := sampler(name)
			switch {
			case err != nil:
				if p != nil {
					p.Kill()
				}
				return err
			case !ok || proc != nil:
				p.Kill() // only the first that can sample is kept
			default:
				proc = p
				defer p.Kill()
			}
			if ok {
				found = append(found, name)
			}
		}
		switch len(found) {
		case 0:
			return errors.New("no feed's plugin can map sample messages")
		case 1:
			feed = found[0]
		default:
			return fmt.Errorf("several feeds can map samples (%s): choose one with -feed", strings.Join(found, ", "))
		}
	}
	lines, msgs, err := readSample(sampleFile)
	if err != nil {
		return fmt.Errorf("cannot read the sample: %w", err)
	}
	raw, err := json.Marshal(cfg.Feeds[feed].Config)
	if err != nil {
		return err
	}
	results, err := proc.Source.Sample(ctx, sdk.ConfigureRequest{Feed: feed, Config: raw, ValidateOnly: true}, msgs, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("feed %s: sample: %w", feed, err)
	}
	if err := sdk.WriteSample(stdout, lines, results); err != nil {
		return err
	}
	bad := 0
	for _, r := range results {
		if len(r.Errors) > 0 {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("feed %s: the sample did not map cleanly: %d of %d messages had mapping errors, shown above", feed, bad, len(results))
	}
	return nil
}

// ValidatePluginDir returns the directory `sluice validate` takes the
// plugins from: cfg.PluginDir, or, when that does not exist, the plugins
// directory next to the sluice binary at exe (bin/plugins beside
// bin/sluice after `make build`), with a note that says so. Someone
// trying a feed's mappings need not install the plugins first. When
// neither exists the error says how to point at them.
func ValidatePluginDir(cfg *config.Config, exe string) (dir, note string, err error) {
	if _, err := os.Stat(cfg.PluginDir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return cfg.PluginDir, "", nil
	}
	beside := ""
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		beside = filepath.Join(filepath.Dir(exe), "plugins")
		if st, err := os.Stat(beside); err == nil && st.IsDir() {
			return beside, fmt.Sprintf("plugin_dir %s does not exist; using %s, next to the sluice binary", cfg.PluginDir, beside), nil
		}
	}
	msg := fmt.Sprintf("%s does not exist", cfg.PluginDir)
	if beside != "" {
		msg += fmt.Sprintf(", nor does %s next to the sluice binary", beside)
	}
	msg += ": set plugin_dir (or SLUICE_PLUGIN_DIR) to the directory holding the sluice-source-* plugins (bin/plugins after make build)"
	return "", "", &config.Error{File: cfg.File, Key: "plugin_dir", Msg: msg}
}

// readSample reads a file of sample messages, one a line, skipping blank
// lines and lines starting with #; lines[i] is the line of msgs[i].
func readSample(path string) (lines []int, msgs [][]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), sdk.MaxSampleBytes)
	for n := 1; sc.Scan(); n++ {
		msg := bytes.TrimSpace(sc.Bytes())
		if len(msg) == 0 || msg[0] == '#' {
			continue
		}
		lines, msgs = append(lines, n), append(msgs, bytes.Clone(msg))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return lines, msgs, nil
}

// configSecrets is a scrubber that knows the config's secrets and the
// values of the variables its feeds reference, for the output of the
// commands that run plugins outside the agent.
func configSecrets(cfg *config.Config) *redact.Scrubber {
	s := redact.NewScrubber()
	s.Add(cfg.SecretValues()...)
	for _, fc := range cfg.Feeds {
		for _, name := range fc.EnvNames() {
			s.Add(os.Getenv(name))
		}
	}
	return s
}

// feedLaunch is how a feed's plugin is started outside the running agent
// (validate, sample): as the agent would, with the feed's pin and the
// environment its config references.
func feedLaunch(cfg *config.Config, fc config.Feed, log *slog.Logger) host.LaunchOptions {
	return host.LaunchOptions{
		Pin:             cfg.Plugins[fc.Plugin].SHA256,
		Env:             host.PluginEnv(os.Environ(), fc.EnvNames()),
		MaxMessageBytes: cfg.Limits.MaxPluginMessageBytes,
		Log:             log,
	}
}
