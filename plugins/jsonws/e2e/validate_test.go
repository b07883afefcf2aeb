package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testbin"
)

// validate runs `sluice validate` with args and env added to the test
// environment, returning stdout, stderr and the exit code.
func validate(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"validate"}, args...)...)
	cmd.Env = append(testbin.Env(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// A user trying mappings has a config whose plugin_dir does not exist
// yet (the default /usr/lib/sluice/plugins, say) and the binaries of make
// build: validate -sample takes the plugins next to the sluice binary and
// says so; a sample that does not map says that, not "exit status 1"; and
// the user's own SLUICE_* variables are no error.
func TestValidateSampleForANewUser(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "feeds.d"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "feeds.d", "htx.yaml"), []byte(example(t, "jsonws-htx.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	mainFile := filepath.Join(dir, "sluice.yaml")
	os.WriteFile(mainFile, []byte("data_dir: "+dir+"\nplugin_dir: "+filepath.Join(dir, "no-such-dir")+"\nfeeds_dir: feeds.d\nsinks:\n  sqlite: {type: sqlite}\n"), 0o644)
	sample := filepath.Join(repoRoot(t), "config", "examples", "samples", "htx.jsonl")

	out, errOut, code := validate(t, testbin.Sluice(t), []string{"SLUICE_BUILD=7", "SLUICE_LOG_LEVEL=debug"}, "-config", mainFile, "-sample", sample)
	if code != 0 || !strings.Contains(out, "line 2: answered: {\"pong\":1492420473027}") || !strings.Contains(out, "2 points, 0 mapping errors") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	beside := filepath.Join(filepath.Dir(testbin.Sluice(t)), "plugins")
	for _, want := range []string{
		"sluice: plugin_dir " + filepath.Join(dir, "no-such-dir") + " does not exist; using " + beside + ", next to the sluice binary",
		"env SLUICE_BUILD: ignored",
		"env SLUICE_LOG_LEVEL: ignored: SLUICE_ and a top-level config key start a config override (SLUICE_LOG__LEVEL, SLUICE_SINKS__DB__PATH); this one names none; did you mean SLUICE_LOG__LEVEL?",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// A message the rules cannot map.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"ch":"market.btcusdt.trade.detail","tick":{"data":[{"tradeId":"x","ts":1,"price":1,"amount":1,"direction":"buy"}]}}`+"\n"), 0o644)
	out, errOut, code = validate(t, testbin.Sluice(t), nil, "-config", mainFile, "-sample", bad)
	if code != 1 || !strings.Contains(out, `field trade_id: string "x" is not an int64`) {
		t.Errorf("exit %d\nstdout:\n%s", code, out)
	}
	if !strings.Contains(errOut, "sluice: feed htx-trades: the sample did not map cleanly: 1 of 1 messages had mapping errors, shown above") || strings.Contains(errOut, "exit status") {
		t.Errorf("stderr:\n%s", errOut)
	}
	_, errOut, code = validate(t, testbin.Sluice(t), nil, "-config", mainFile, "-sample", filepath.Join(dir, "missing.jsonl"))
	if code != 1 || !strings.Contains(errOut, "sluice: cannot read the sample: open "+filepath.Join(dir, "missing.jsonl")+": no such file or directory") {
		t.Errorf("a missing sample: exit %d\n%s", code, errOut)
	}

	// A sluice binary with no plugins beside it either: the error says
	// how to point at them.
	lone := filepath.Join(t.TempDir(), "sluice")
	b, err := os.ReadFile(testbin.Sluice(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(lone, b, 0o755)
	_, errOut, code = validate(t, lone, nil, "-config", mainFile, "-sample", sample)
	want := mainFile + ": plugin_dir: " + filepath.Join(dir, "no-such-dir") + " does not exist, nor does " + filepath.Join(filepath.Dir(lone), "plugins") +
		" next to the sluice binary: set plugin_dir (or SLUICE_PLUGIN_DIR) to the directory holding the sluice-source-* plugins (bin/plugins after make build)"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d\n%s\nwant %s", code, errOut, want)
	}
}
