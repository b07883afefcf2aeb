package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// Binary is a discovered plugin executable.
type Binary struct {
	Name string // the part after sluice-source-
	Path string
}

// Discover lists the sluice-source-* executables in dir by plugin name.
// It does not check them: Launch does, on the file it runs.
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

// DefaultMaxMessageBytes caps a message from a plugin when LaunchOptions
// leaves MaxMessageBytes zero (config.DefaultMaxPluginMessageBytes).
const DefaultMaxMessageBytes = 16 << 20

// LaunchOptions say how to start a plugin process.
type LaunchOptions struct {
	// Pin is the hex SHA-256 the executable must have; empty for none.
	Pin string
	// Env is the plugin's whole environment, as from PluginEnv. Nothing
	// of the agent's own environment is passed beyond it.
	Env []string
	// MaxMessageBytes caps each gRPC message the agent receives from the
	// plugin; 0 means DefaultMaxMessageBytes. A batch over it fails the
	// stream with an error wrapping sdk.ErrMessageTooLarge.
	MaxMessageBytes int
	// Log receives the plugin's own log lines; it should already carry
	// the feed's name. Nil discards them.
	Log *slog.Logger
}

// Process is one running plugin process.
//
// Lifecycle: Launch starts it; Source talks to it; Kill stops it and is
// idempotent. Exited reports whether the process has gone.
type Process struct {
	Source *sdk.Client
	Pid    int
	// SHA256 is the hex digest of the executable this process runs.
	SHA256 string
	client *plugin.Client
}

// beforeExec, when set (by tests), runs between the checks and the start
// of the process: where a swapped or rewritten file would have to act.
var beforeExec func(path string)

// Launch checks the plugin binary and starts it through go-plugin.
//
// What runs is the file that was checked: Launch opens the executable,
// checks who may change it and its directory (see TrustError), hashes the
// open file, compares the digest with the pin, and starts the process from
// that open descriptor (/proc/self/fd), never from the path again. A file
// renamed over the path after the check does not run. A file rewritten in
// place between the check and the start is detected (the started file no
// longer hashes to the digest) and the process is killed before it is
// given any config.
func Launch(ctx context.Context, b Binary, opts LaunchOptions) (*Process, error) {
	v, err := open(b, opts.Pin)
	if err != nil {
		return nil, err
	}
	defer v.f.Close()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	level := slog.LevelInfo
	if log.Enabled(ctx, slog.LevelDebug) {
		level = slog.LevelDebug
	}
	cmd := v.command()
	cmd.Env = append(append([]string(nil), opts.Env...), sdk.LogLevelEnv+"="+level.String())
	maxMsg := opts.MaxMessageBytes
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: sdk.GRPCPlugin()},
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env is all the plugin gets, with go-plugin's handshake
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions: []grpc.DialOption{
			// After go-plugin's own unlimited default, so this one wins.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg)),
		},
		Logger: hclog.NewNullLogger(),
		Stderr: NewLogWriter(log),
		// The agent stops its plugins itself (systemd KillMode=mixed);
		Managed: true, // so a hard exit can still kill every plugin (plugin.CleanupClients)
	})
	if beforeExec != nil {
		beforeExec(b.Path)
	}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", b.Path, err)
	}
	if err := v.unchanged(); err != nil {
		client.Kill()
		return nil, err
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
	p := &Process{Source: src, SHA256: v.sha256, client: client}
	if rc := client.ReattachConfig(); rc != nil {
		p.Pid = rc.Pid
	}
	return p, nil
}

// Kill stops the process (gracefully first, as go-plugin does).
func (p *Process) Kill() { p.client.Kill() }

// Exited reports whether the plugin process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// verified is a plugin executable, open, that passed its checks.
type verified struct {
	path   string
	f      *os.File
	sha256 string
}

// open opens the plugin executable and checks it: its directory and the
// file must be safe from other users (checkTrust), and the SHA-256 of what
// was read must match pin. On success the file stays open for command.
func open(b Binary, pin string) (*verified, error) {
	dir := filepath.Dir(b.Path)
	dfi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin directory: %w", err)
	}
	if err := checkTrust(dir, "plugin directory", dfi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(b.Path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open plugin: %w", err)
	}
	fail := func(err error) (*verified, error) {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("plugin %s: %w", b.Path, err))
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fail(fmt.Errorf("plugin %s is not an executable file", b.Path))
	}
	if err := checkTrust(b.Path, "plugin", fi); err != nil {
		return fail(err)
	}
	v := &verified{path: b.Path, f: f}
	if v.sha256, err = v.hash(); err != nil {
		return fail(err)
	}
	if pin != "" && !strings.EqualFold(v.sha256, pin) {
		return fail(&ChecksumError{Path: b.Path, Want: strings.ToLower(pin), Got: v.sha256})
	}
	return v, nil
}

// hash returns the hex SHA-256 of the open file's content.
func (v *verified) hash() (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(v.f, 0, math.MaxInt64)); err != nil {
		return "", fmt.Errorf("hash plugin %s: %w", v.path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrChanged is a plugin file written to between its check and its start.
var ErrChanged = errors.New("the file was written to between its check and its start; not using it")

// unchanged checks, once the process runs, that the open file still holds
// what was hashed. A file renamed over the path does not matter (what ran
// is the open file); one rewritten in place before the start does: then
// what runs is not what was checked. Once the process runs, the kernel
// refuses writes to its executable (ETXTBSY), so what this reads is what
// runs.
func (v *verified) unchanged() error {
	sum, err := v.hash()
	if err != nil {
		return err
	}
	if sum != v.sha256 {
		return fmt.Errorf("plugin %s: %w", v.path, ErrChanged)
	}
	return nil
}

// execFD is where the verified file appears in the new process: the
// first of cmd.ExtraFiles. The kernel resolves /proc/self/fd/3 in the
// child, after the fork, to the very file that was hashed.
const execFD = 3

// command returns a command that executes the open file, with argv[0] the
// plugin's path so that ps and logs still name it. The plugin process
// keeps that read-only descriptor open; it reads only its own executable.
func (v *verified) command(args ...string) *exec.Cmd {
	cmd := exec.Command(fmt.Sprintf("/proc/self/fd/%d", execFD), args...)
	cmd.Args[0] = v.path
	cmd.ExtraFiles = []*os.File{v.f}
	return cmd
}
