package secret

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/capread"
)

const canary = "CANARY-s3cr3t"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in      string
		refs    []Ref
		holder  string
		wantErr string // substring; "" for no error
	}{
		{in: "plain", holder: "plain"},
		{in: "a$$b$", holder: "a$b$"},
		{in: "wss://h/x?k=${env:KEY}&t=${file:/run/t}", refs: []Ref{{Env, "KEY"}, {File, "/run/t"}}, holder: "wss://h/x?k=x&t=x"},
		{in: "pre-" + canary + "${env:", wantErr: "reference at byte 17: ${ without a closing }"},
		{in: canary + "${" + canary + "}", wantErr: "must be ${env:NAME} or ${file:PATH}"},
		{in: canary + "${vault:x}", wantErr: `unknown kind "vault"`},
		{in: "${env:}", wantErr: "${env:} names nothing"},
		{in: "${env:" + canary + "}", wantErr: "needs a variable name"},
	} {
		tm, err := Parse(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Parse(%q) error %v, want %q", c.in, err, c.wantErr)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Parse(%q): %T is not a *SyntaxError", c.in, err)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("Parse(%q): error %q quotes the surrounding text", c.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := tm.Refs(); !slices.Equal(got, c.refs) {
			t.Errorf("Parse(%q).Refs() = %v, want %v", c.in, got, c.refs)
		}
		if got := tm.Placeholder("x"); got != c.holder {
			t.Errorf("Parse(%q).Placeholder = %q, want %q", c.in, got, c.holder)
		}
	}
}

func TestRenderAndLookup(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, capread.Secret+1), 0o600)
	t.Setenv("SLUICE_TEST_SECRET", "from-env")

	tm, err := Parse("a=${env:SLUICE_TEST_SECRET}&b=${file:" + file + "}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tm.Render(Lookup)
	if err != nil || got != "a=from-env&b=from-file" {
		t.Fatalf("Render = %q, %v", got, err)
	}

	for ref, want := range map[Ref]string{
		{Env, "SLUICE_TEST_UNSET"}: "environment variable SLUICE_TEST_UNSET is not set",
		{File, big}:                big + " is larger than 64 KiB, the limit for a secret file",
		{File, "/dev/zero"}:        "/dev/zero is larger than 64 KiB",
		{File, dir + "/missing"}:   "cannot read " + dir + "/missing: no such file",
	} {
		if _, err := Lookup(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Lookup(%v) = %v, want %q", ref, err, want)
		}
	}
}

func TestEnvNames(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                    nil,
		"${env:A}${env:B}${env:A}":            {"A", "B"},
		"$${env:NOT}${file:/x}${env:C}":       {"C"},
		"${env:bad name}${env:D}":             {"D"},
		"${env:E":                             nil,
		"x${env:SLUICE_SINKS__INFLUX__TOKEN}": {"SLUICE_SINKS__INFLUX__TOKEN"},
	} {
		if got := EnvNames(in); !slices.Equal(got, want) {
			t.Errorf("EnvNames(%q) = %v, want %v", in, got, want)
		}
	}
}

// Whatever the input, Parse either fails without quoting text beyond a
// reference kind, or round-trips its references through EnvNames.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "$$", "${env:A}", "x${file:/p}y", "${", "${env:", "${x:y}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset >= len(s) {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		var env []string
		for _, r := range tm.Refs() {
			if r.Kind == Env && !slices.Contains(env, r.Arg) {
				env = append(env, r.Arg)
			}
		}
		if got := EnvNames(s); !slices.Equal(got, env) {
			t.Fatalf("EnvNames(%q) = %v, Parse found %v", s, got, env)
		}
	})
}
