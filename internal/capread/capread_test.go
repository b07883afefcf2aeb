package capread

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	exact := filepath.Join(dir, "exact")
	over := filepath.Join(dir, "over")
	os.WriteFile(small, []byte("abc"), 0o600)
	os.WriteFile(exact, []byte(strings.Repeat("x", 16)), 0o600)
	os.WriteFile(over, []byte(strings.Repeat("x", 17)), 0o600)

	for _, c := range []struct {
		path    string
		want    string
		tooLong bool
	}{
		{small, "abc", false},
		{exact, strings.Repeat("x", 16), false},
		{over, "", true},
		// A device that never ends: the cap is all that stops it.
		{"/dev/zero", "", true},
	} {
		got, err := File(c.path, 16, "a test file")
		var tl *TooLargeError
		switch {
		case c.tooLong && !errors.As(err, &tl):
			t.Errorf("%s: err %v, want TooLargeError", c.path, err)
		case c.tooLong:
			if msg := err.Error(); !strings.Contains(msg, c.path) || !strings.Contains(msg, "16 bytes") || !strings.Contains(msg, "a test file") {
				t.Errorf("%s: message %q should name the file, the cap and the kind", c.path, msg)
			}
		case err != nil || string(got) != c.want:
			t.Errorf("%s: %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	if _, err := File(filepath.Join(dir, "missing"), 16, "x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{Secret: "64 KiB", Config: "4 MiB", PEM: "1 MiB", 100: "100 bytes", 1536: "1536 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
