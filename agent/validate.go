package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/config"
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
	var errs []error
	declared := make(map[string][]sluice.Measurement)
	for _, name := range sortedKeys(cfg.Feeds) {
		fc := cfg.Feeds[name]
		fail := func(key, msg string) {
			errs = append(errs, &config.Error{File: fc.File, Key: key, Msg: msg})
		}
		bin, ok := plugins[fc.Plugin]
		if !ok {
			fail("feeds."+name+".plugin", fmt.Sprintf("plugin %q not found in %s (found: %s)",
				fc.Plugin, cfg.PluginDir, strings.Join(host.Names(plugins), ", ")))
			continue
		}
		if err := host.Verify(bin, cfg.Plugins[fc.Plugin].SHA256); err != nil {
			errs = append(errs, &config.Error{File: cfg.File, Key: "plugins." + fc.Plugin + ".sha256", Msg: err.Error()})
			continue
		}
		ms, err := validateFeedConfig(ctx, bin, name, fc, log)
		var ces sdk.ConfigErrors
		switch {
		case err == nil:
			declared[name] = ms
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

func validateFeedConfig(ctx context.Context, bin host.Binary, name string, fc config.Feed, log *slog.Logger) ([]sluice.Measurement, error) {
	proc, err := host.Launch(ctx, bin, log.With("feed", name, "plugin", fc.Plugin))
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
		pi.SHA256, pi.Err = host.FileSHA256(bin.Path)
		if pi.Err == nil {
			var proc *host.Process
			if proc, pi.Err = host.Launch(ctx, bin, log.With("plugin", name)); pi.Err == nil {
				pi.Info, pi.Err = proc.Source.Describe(ctx)
				proc.Kill()
			}
		}
		out = append(out, pi)
	}
	return out, nil
}

// SampleFeed shows what a feed's config makes of sample messages, offline:
// it runs the feed's plugin binary in its sample mode (sdk.CapSample) with
// the feed's config as loaded (env overrides and all), writing its output
// to stdout. feed may be empty when exactly one feed's plugin can sample.
func SampleFeed(ctx context.Context, cfg *config.Config, feed, sampleFile string, stdout, stderr io.Writer, log *slog.Logger) error {
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return err
	}
	canSample := func(name string) (host.Binary, bool, error) {
		bin, ok := plugins[cfg.Feeds[name].Plugin]
		if !ok {
			return bin, false, fmt.Errorf("feed %s: plugin %q not found in %s", name, cfg.Feeds[name].Plugin, cfg.PluginDir)
		}
		proc, err := host.Launch(ctx, bin, log.With("feed", name))
		if err != nil {
			return bin, false, err
		}
		defer proc.Kill()
		info, err := proc.Source.Describe(ctx)
		return bin, err == nil && slices.Contains(info.Capabilities, sdk.CapSample), err
	}
	var bin host.Binary
	switch {
	case feed != "":
		if _, ok := cfg.Feeds[feed]; !ok {
			return fmt.Errorf("no feed %q in the config", feed)
		}
		b, ok, err := canSample(feed)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("feed %s: plugin %s cannot map sample messages", feed, cfg.Feeds[feed].Plugin)
		}
		bin = b
	default:
		var found []string
		for _, name := range sortedKeys(cfg.Feeds) {
			b, ok, err := canSample(name)
			if err != nil {
				return err
			}
			if ok {
				found, bin = append(found, name), b
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
	raw, err := json.Marshal(cfg.Feeds[feed].Config)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "sluice-sample-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	cmd := exec.CommandContext(ctx, bin.Path, "-sample", sampleFile, "-feed-config", tmp.Name())
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("feed %s: sample: %w", feed, err)
	}
	return nil
}
