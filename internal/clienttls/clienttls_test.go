package clienttls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// files writes a self-signed certificate, its key and a file that is not
// PEM into a temporary directory.
func files(t *testing.T) (cert, key, notPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, notPEM = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "x")
	for path, b := range map[string][]byte{
		cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		notPEM: []byte("hello"),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, notPEM
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
