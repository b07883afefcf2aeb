package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// Binary is a discovered plugin executable.
type Binary struct {
	Name string // the part after sluice-source-
	Path string
}

// Discover lists the sluice-source-* executables in dir by plugin name.
func Discover(dir string) (map[string]Binary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin directory: %w", err)
	}
	found := make(map[string]Binary)
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), sdk.BinaryPrefix)
		if !ok || name == "" || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		found[name] = Binary{Name: name, Path: filepath.Join(dir, e.Name())}
	}
	return found, nil
}

// Names returns the plugin names in order, for messages.
func Names(bins map[string]Binary) []string {
	names := make([]string, 0, len(bins))
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ChecksumError is a plugin binary that does not match its pin.
type ChecksumError struct {
	Path      string
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("plugin %s does not match its pin: sha256 is %s, config pins %s", e.Path, e.Got, e.Want)
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks the binary against a hex SHA-256 pin; an empty pin passes.
func Verify(b Binary, pin string) error {
	if pin == "" {
		return nil
	}
	got, err := FileSHA256(b.Path)
	if err != nil {
		return fmt.Errorf("hash plugin %s: %w", b.Path, err)
	}
	if !strings.EqualFold(got, pin) {
		return &ChecksumError{Path: b.Path, Want: strings.ToLower(pin), Got: got}
	}
	return nil
}

// Process is one running plugin process.
//
// Lifecycle: Launch starts it; Source talks to it; Kill stops it and is
// idempotent. Exited reports whether the process has gone.
type Process struct {
	Source *sdk.Client
	Pid    int
	client *plugin.Client
}

// Launch starts the plugin binary and connects to it. log receives the
// plugin's own log lines; it should already carry the feed's name.
func Launch(ctx context.Context, b Binary, log *slog.Logger) (*Process, error) {
	cmd := exec.Command(b.Path)
	level := slog.LevelInfo
	if log.Enabled(ctx, slog.LevelDebug) {
		level = slog.LevelDebug
	}
	cmd.Env = append(os.Environ(), sdk.LogLevelEnv+"="+level.String())
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: sdk.GRPCPlugin()},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		Stderr:           NewLogWriter(log),
		// The agent stops its plugins itself (systemd KillMode=mixed);
		Managed: true, // so a hard exit can still kill every plugin (plugin.CleanupClients)
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", b.Path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: %w", b.Path, err)
	}
	src, ok := raw.(*sdk.Client)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: unexpected client type %T", b.Path, raw)
	}
	p := &Process{Source: src, client: client}
	if rc := client.ReattachConfig(); rc != nil {
		p.Pid = rc.Pid
	}
	return p, nil
}

// Kill stops the process (gracefully first, as go-plugin does).
func (p *Process) Kill() { p.client.Kill() }

// Exited reports whether the plugin process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }
