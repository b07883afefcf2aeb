package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// installPlugin copies the built plugin from into a fresh plugin
// directory as sluice-source-<as>, and returns the Binary and its digest.
func installPlugin(t *testing.T, from, as string) (Binary, string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), sdk.BinaryPrefix+as)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return Binary{Name: as, Path: path}, hex.EncodeToString(sum[:])
}

func synthPath(t *testing.T) string {
	return filepath.Join(testbin.PluginDir(t), sdk.BinaryPrefix+"synth")
}

// describe launches b and returns the name the running plugin gives.
func describe(t *testing.T, b Binary, opts LaunchOptions) (*Process, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Launch(ctx, b, opts)
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(p.Kill)
	info, err := p.Source.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p, info.Name, nil
}

func setHook(t *testing.T, fn func(path string)) {
	beforeExec = fn
	t.Cleanup(func() { beforeExec = nil })
}

// The file replaced between the check and the start (renamed over the
// path, as an attacker or a careless deploy would) is not what runs: the
// checked file is, pinned or not.
func TestLaunchRunsTheFileItChecked(t *testing.T) {
	for _, pinned := range []bool{true, false} {
		bin, sum := installPlugin(t, synthPath(t), "x")
		impostor, _ := installPlugin(t, testbin.TestPlugin(t, "envdump"), "impostor")
		// Same directory, so the rename is atomic, as an attack would be.
		staged := filepath.Join(filepath.Dir(bin.Path), ".staged")
		if err := os.Rename(impostor.Path, staged); err != nil {
			t.Fatal(err)
		}
		swapped := false
		setHook(t, func(path string) {
			if err := os.Rename(staged, path); err != nil {
				t.Error(err)
			}
			swapped = true
		})
		pin := ""
		if pinned {
			pin = sum
		}
		p, name, err := describe(t, bin, LaunchOptions{Pin: pin})
		if err != nil {
			t.Fatalf("pinned %v: %v", pinned, err)
		}
		if !swapped || name != "synth" || p.SHA256 != sum {
			t.Errorf("pinned %v: swapped %v, ran %q with sha256 %s; want synth %s", pinned, swapped, name, p.SHA256, sum)
		}
		// The path now holds the impostor: the next launch checks it.
		setHook(t, nil)
		if _, _, err := describe(t, bin, LaunchOptions{Pin: sum}); !errors.As(err, new(*ChecksumError)) {
			t.Errorf("the impostor with the old pin: %v, want a ChecksumError", err)
		}
	}
}

// A file rewritten in place after it was hashed is caught before the
// process is used.
func TestLaunchRefusesFileRewrittenInPlace(t *testing.T) {
	bin, sum := installPlugin(t, synthPath(t), "x")
	other, err := os.ReadFile(testbin.TestPlugin(t, "envdump"))
	if err != nil {
		t.Fatal(err)
	}
	setHook(t, func(path string) {
		if err := os.WriteFile(path, other, 0o755); err != nil {
			t.Error(err)
		}
	})
	_, _, err = describe(t, bin, LaunchOptions{Pin: sum})
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), bin.Path) {
		t.Fatalf("got %v, want ErrChanged naming %s", err, bin.Path)
	}
}

func TestLaunchRefusesWhatOthersCanChange(t *testing.T) {
	check := func(name string, prep func(bin Binary) string, want ...string) {
		t.Run(name, func(t *testing.T) {
			bin, sum := installPlugin(t, synthPath(t), "x")
			path := prep(bin)
			_, _, err := describe(t, bin, LaunchOptions{Pin: sum})
			var te *TrustError
			if !errors.As(err, &te) || te.Path != path {
				t.Fatalf("got %v, want a TrustError on %s", err, path)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	check("group-writable directory", func(bin Binary) string {
		dir := filepath.Dir(bin.Path)
		os.Chmod(dir, 0o775)
		return dir
	}, "plugin directory", "writable by its group (mode 0775)", "chmod g-w "+"")
	check("world-writable plugin", func(bin Binary) string {
		os.Chmod(bin.Path, 0o757)
		return bin.Path
	}, "writable by every user (mode 0757)", "chmod o-w "+"")
	check("group- and world-writable plugin", func(bin Binary) string {
		os.Chmod(bin.Path, 0o777)
		return bin.Path
	}, "writable by its group and every user", "chmod go-w")
	if os.Geteuid() == 0 {
		check("plugin owned by another user", func(bin Binary) string {
			if err := os.Chown(bin.Path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return bin.Path
		}, "owned by uid 65534, neither root nor the user the agent runs as", "chown root "+"")
	}
	// Mode 0755 root- or self-owned, in a 0700 or 0755 directory, runs.
	bin, sum := installPlugin(t, synthPath(t), "x")
	os.Chmod(filepath.Dir(bin.Path), 0o755)
	if _, name, err := describe(t, bin, LaunchOptions{Pin: sum}); err != nil || name != "synth" {
		t.Errorf("a well-kept plugin: %q, %v", name, err)
	}
}

// envdump reports its own environment as points.
func pluginEnv(t *testing.T, opts LaunchOptions) map[string]string {
	t.Helper()
	bin, _ := installPlugin(t, testbin.TestPlugin(t, "envdump"), "envdump")
	p, _, err := describe(t, bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Source.Configure(ctx, sdk.ConfigureRequest{Feed: "t", Config: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	err = p.Source.Stream(ctx, sdk.StreamOptions{FlushInterval: 10 * time.Millisecond}, func(b *sdk.Batch, _ int, _ error) error {
		for _, pt := range b.Points {
			if pt.Measurement != "env" {
				continue
			}
			name, _ := pt.Tag("name")
			v, _ := pt.Field("value")
			env[name] = v.Str()
		}
		if _, ok := env["PATH"]; ok {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("stream: %v", err)
	}
	return env
}

var errStop = errors.New("stop")

// A plugin's environment is what PluginEnv chose plus go-plugin's
// handshake: never the agent's secrets, nor anything else of its own.
func TestPluginEnvironment(t *testing.T) {
	const canary = "CANARY-env-3b9d"
	// In this process's own environment too: go-plugin would pass it on
	// by default.
	t.Setenv("SLUICE_SINKS__INFLUX__TOKEN", canary)
	t.Setenv("UNRELATED_SECRET", canary)
	t.Setenv("FEED_KEY", "feed-key-value")
	t.Setenv("LC_TIME", "C")
	env := pluginEnv(t, LaunchOptions{Env: PluginEnv(os.Environ(), []string{"FEED_KEY", "SLUICE_SINKS__INFLUX__TOKEN"})})
	var names []string
	for k, v := range env {
		names = append(names, k)
		if strings.Contains(v, canary) {
			t.Errorf("the plugin got %s=%s", k, v)
		}
	}
	sort.Strings(names)
	for _, want := range []string{"PATH", "FEED_KEY", "LC_TIME", sdk.Handshake.MagicCookieKey, sdk.LogLevelEnv} {
		if !slices.Contains(names, want) {
			t.Errorf("the plugin lacks %s; it has %v", want, names)
		}
	}
	if env["FEED_KEY"] != "feed-key-value" {
		t.Errorf("FEED_KEY = %q", env["FEED_KEY"])
	}
	for _, n := range names {
		allowed := slices.Contains(baseEnv, n) || strings.HasPrefix(n, "LC_") || strings.HasPrefix(n, "PLUGIN_") ||
			n == "FEED_KEY" || n == sdk.Handshake.MagicCookieKey || n == sdk.LogLevelEnv
		if !allowed {
			t.Errorf("the plugin got %s, which nothing asked for", n)
		}
	}
}

func TestPluginEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/var/lib/sluice", "TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C", "LC_NUMERIC=C",
		"HTTPS_PROXY=http://proxy:3128", "no_proxy=localhost", "SSL_CERT_FILE=/etc/ca.pem",
		"SLUICE_SINKS__INFLUX__TOKEN=secret", "SLUICE_LOG__LEVEL=debug",
		"INVOCATION_ID=abc", "NOTIFY_SOCKET=/run/systemd/notify", "AWS_SECRET_ACCESS_KEY=x",
		"WS_KEY=k", "WS_TOKEN=t", "NOEQUALS",
	}
	got := PluginEnv(environ, []string{"WS_KEY", "SLUICE_LOG__LEVEL", "MISSING"})
	want := []string{
		"PATH=/usr/bin", "HOME=/var/lib/sluice", "TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C", "LC_NUMERIC=C",
		"HTTPS_PROXY=http://proxy:3128", "no_proxy=localhost", "SSL_CERT_FILE=/etc/ca.pem",
		"WS_KEY=k",
	}
	if !slices.Equal(got, want) {
		t.Errorf("PluginEnv =\n%v\nwant\n%v", got, want)
	}
}

// A batch over the cap fails the stream with ErrMessageTooLarge; one
// under it flows.
func TestMessageCap(t *testing.T) {
	bin, _ := installPlugin(t, synthPath(t), "synth")
	// Points of about 8 KiB: a batch of 100 is about 800 KiB.
	cfg := []byte(`{"symbols":["` + strings.Repeat("S", 8<<10) + `"],"count":1000}`)
	run := func(maxMsg, batch int) error {
		p, _, err := describe(t, bin, LaunchOptions{MaxMessageBytes: maxMsg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := p.Source.Configure(ctx, sdk.ConfigureRequest{Feed: "t", Config: cfg}); err != nil {
			t.Fatal(err)
		}
		n := 0
		return p.Source.Stream(ctx, sdk.StreamOptions{BatchSize: batch, FlushInterval: time.Second}, func(b *sdk.Batch, _ int, _ error) error {
			if n += len(b.Points); n >= 1000 {
				return errStop
			}
			return nil
		})
	}
	if err := run(256<<10, 100); !errors.Is(err, sdk.ErrMessageTooLarge) || !strings.Contains(err.Error(), "vs. 262144") {
		t.Errorf("batches of ~800 KiB under a 256 KiB cap: %v, want ErrMessageTooLarge", err)
	}
	if err := run(4<<20, 100); !errors.Is(err, errStop) {
		t.Errorf("under a 4 MiB cap: %v, want every point", err)
	}
}
