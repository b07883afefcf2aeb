package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sluicehq/sluice/agent/host"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// ValidateFeeds asks each feed's plugin to check the feed's config, and
// returns every problem, each naming the file and key, joined.
func ValidateFeeds(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	plugins, err := host.Discover(cfg.PluginDir)
	if err != nil {
		return &config.Error{File: cfg.File, Key: "plugin_dir", Msg: err.Error()}
	}
	var errs []error
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
		if err := validateFeedConfig(ctx, bin, name, fc, log); err != nil {
			var ces sdk.ConfigErrors
			if !errors.As(err, &ces) {
				fail("feeds."+name, err.Error())
				continue
			}
			for _, ce := range ces {
				key := "feeds." + name + ".config"
				if ce.Key != "" {
					key += "." + ce.Key
				}
				fail(key, ce.Msg)
			}
		}
	}
	return errors.Join(errs...)
}

func validateFeedConfig(ctx context.Context, bin host.Binary, name string, fc config.Feed, log *slog.Logger) error {
	proc, err := host.Launch(ctx, bin, log.With("feed", name, "plugin", fc.Plugin))
	if err != nil {
		return err
	}
	defer proc.Kill()
	raw, err := json.Marshal(fc.Config)
	if err != nil {
		return err
	}
	_, err = proc.Source.Configure(ctx, sdk.ConfigureRequest{Feed: name, Config: raw, ValidateOnly: true})
	return err
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
