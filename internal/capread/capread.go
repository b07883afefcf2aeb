// Package capread reads files whose size Sluice does not control (config
// files, token files, secret files, certificates) with a cap, so that a
// mistaken path such as /dev/zero or a runaway log gives a clear error
// instead of exhausting memory.
package capread

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Caps for the kinds of file Sluice reads.
const (
	// Secret is the cap for a token or a ${file:...} secret.
	Secret = 64 << 10
	// Config is the cap for the main config file and each drop-in.
	Config = 4 << 20
	// PEM is the cap for a TLS certificate, key or CA bundle (a full
	// system CA bundle is about 200 KiB).
	PEM = 1 << 20
)

// TooLargeError is a file over its cap.
type TooLargeError struct {
	Path  string
	Limit int64
	What  string // "a secret file", "a config file"
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the limit for %s", e.Path, Size(e.Limit), e.What)
}

// File returns the contents of the file at path if it holds at most limit
// bytes; past that it stops reading and returns a *TooLargeError. what
// names the kind of file in that error. Other errors are os.Open's and
// Read's, which name the path.
func File(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	// Size the buffer from the file when it says (not /dev/zero).
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() <= limit {
		buf.Grow(int(st.Size()) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if n > limit {
		return nil, &TooLargeError{Path: path, Limit: limit, What: what}
	}
	return buf.Bytes(), nil
}

// Size renders a byte count the way the docs write caps: "64 KiB", "4 MiB".
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
