package clienttls

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// files are a self-signed certificate and its key (testdata, made for
// these tests only: openssl req -x509 -newkey ec -nodes) and a file that
// is not PEM.
func files(t *testing.T) (cert, key, notPEM string) {
	t.Helper()
	notPEM = filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join("testdata", "cert.pem"), filepath.Join("testdata", "key.pem"), notPEM
}

func TestLoad(t *testing.T) {
	cert, key, notPEM := files(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		c    Config
		want []string // "key: error", in order
		ok   func(*tls.Config) bool
	}{
		{name: "zero is no TLS config", ok: func(tc *tls.Config) bool { return tc == nil }},
		{name: "names only", c: Config{ServerName: "db.internal", InsecureSkipVerify: true},
			ok: func(tc *tls.Config) bool {
				return tc.ServerName == "db.internal" && tc.InsecureSkipVerify && tc.MinVersion == tls.VersionTLS12 && tc.RootCAs == nil
			}},
		{name: "every file", c: Config{CAFile: cert, CertFile: cert, KeyFile: key},
			ok: func(tc *tls.Config) bool { return tc.RootCAs != nil && len(tc.Certificates) == 1 }},
		{name: "a CA file without a certificate", c: Config{CAFile: notPEM},
			want: []string{"tls.ca_file: holds no PEM certificate"}},
		{name: "every problem at once", c: Config{CAFile: missing, CertFile: notPEM, KeyFile: notPEM},
			want: []string{"tls.ca_file: open " + missing, "tls.cert_file: tls: failed to find any PEM data"}},
		{name: "an unreadable key", c: Config{CertFile: cert, KeyFile: missing},
			want: []string{"tls.key_file: open " + missing}},
		{name: "a certificate without its key", c: Config{CertFile: cert},
			want: []string{"tls.key_file: missing: cert_file is set"}},
		{name: "a key without its certificate", c: Config{KeyFile: key},
			want: []string{"tls.cert_file: missing: key_file is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := tc.c.Load()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %q", errs, tc.want)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d: %q, want it to start %q", i, e, tc.want[i])
				}
			}
			if tc.ok != nil && !tc.ok(got) {
				t.Errorf("config %+v", got)
			}
		})
	}
}

func TestKeyErrorUnwraps(t *testing.T) {
	_, errs := Config{CAFile: filepath.Join(t.TempDir(), "missing")}.Load()
	err := Join(errs)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "tls.ca_file" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v: want a *KeyError at tls.ca_file wrapping fs.ErrNotExist", err)
	}
	if Join(nil) != nil {
		t.Error("Join(nil) is not nil")
	}
}

func TestCheckReadsNoFile(t *testing.T) {
	// Check is for validation, before the files need exist.
	if errs := (Config{CAFile: "/nonexistent", CertFile: "/nonexistent", KeyFile: "/nonexistent"}).Check(); errs != nil {
		t.Errorf("Check: %v", errs)
	}
}
