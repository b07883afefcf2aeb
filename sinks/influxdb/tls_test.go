package influxdb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// clientCert writes a self-signed client certificate and its key to dir.
func clientCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile, cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := clientCert(t, dir)
	clients := x509.NewCertPool()
	clients.AddCert(cert)

	f := newFake(t, nil) // for its handler
	srv := httptest.NewUnstartedServer(f.srv.Config.Handler)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)

	tests := []struct {
		name   string
		tls    TLS
		failed bool // else success
	}{
		{"ca and client cert", TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, false},
		{"server name in the certificate", TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "example.com"}, false},
		{"insecure skips verification", TLS{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}, false},
		{"unknown authority", TLS{CertFile: certFile, KeyFile: keyFile}, true},
		{"wrong server name", TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, ServerName: "influx.invalid"}, true},
		{"no client certificate", TLS{CAFile: caFile}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSink(t, Config{URL: srv.URL, Gzip: true, TLS: tt.tls})
			err := s.Write(context.Background(), points(2))
			switch {
			case !tt.failed && err != nil:
				t.Fatalf("write: %v", err)
			case tt.failed && !sinks.IsFailed(err):
				t.Fatalf("error %v (%T), want a FailedError", err, err)
			}
		})
	}
	var n int
	for _, r := range f.reqs() {
		if r.Status == http.StatusNoContent {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d writes arrived, want 3", n)
	}
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(Config{URL: "https://x", Bucket: "b", TLS: TLS{CAFile: notPEM, CertFile: notPEM, KeyFile: notPEM}}, nil)
	err := s.Open(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"tls.ca_file: holds no PEM certificate", "tls.cert_file: tls: failed to find any PEM data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
