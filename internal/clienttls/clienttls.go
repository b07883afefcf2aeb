package clienttls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"

	"github.com/sluicehq/sluice/internal/capread"
)

// Config is the tls: keys. The agent's config loader reads the config
// tags (files relative to the config's directory); the source plugins
// read the json tags. The zero Config is plain TCP's defaults: no
// *tls.Config at all.
type Config struct {
	CAFile             string `config:"ca_file,path=config_dir" doc:"CA bundle to trust instead of the system's" json:"ca_file" yaml:"ca_file" koanf:"ca_file"`
	CertFile           string `config:"cert_file,path=config_dir" doc:"client certificate, for mutual TLS; with key_file" json:"cert_file" yaml:"cert_file" koanf:"cert_file"`
	KeyFile            string `config:"key_file,path=config_dir" doc:"client certificate's key; with cert_file" json:"key_file" yaml:"key_file" koanf:"key_file"`
	ServerName         string `config:"server_name" doc:"name expected in the server's certificate, if not the URL's host" json:"server_name" yaml:"server_name" koanf:"server_name"`
	InsecureSkipVerify bool   `config:"insecure_skip_verify" doc:"skip verifying the server's certificate; for testing only" json:"insecure_skip_verify" yaml:"insecure_skip_verify" koanf:"insecure_skip_verify"`
}

// IsZero reports whether no key is set.
func (c Config) IsZero() bool { return c == Config{} }

// ErrNoCertificate is a CA file without a PEM certificate in it.
var ErrNoCertificate = errors.New("holds no PEM certificate")

// KeyError is a problem with one key's file.
type KeyError struct {
	Key string // relative to the section holding tls: "tls.ca_file"
	Err error  // the file's error (it names the path), or ErrNoCertificate
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Load reads the files (each within capread.PEM) and returns the TLS
// config they make, TLS 1.2 at least; nil for the zero Config. It
// reports every problem at once, each a *KeyError.
func (c Config) Load() (*tls.Config, []*KeyError) {
	if c.IsZero() {
		return nil, nil
	}
	tc := &tls.Config{
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	var errs []*KeyError
	fail := func(key string, err error) { errs = append(errs, &KeyError{Key: key, Err: err}) }
	if c.CAFile != "" {
		pem, err := capread.File(c.CAFile, capread.PEM, "a PEM file")
		if err != nil {
			fail("tls.ca_file", err)
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				fail("tls.ca_file", ErrNoCertificate)
			}
			tc.RootCAs = pool
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		certPEM, err := capread.File(c.CertFile, capread.PEM, "a PEM file")
		if err != nil {
			fail("tls.cert_file", err)
			break
		}
		keyPEM, err := capread.File(c.KeyFile, capread.PEM, "a PEM file")
		if err != nil {
			fail("tls.key_file", err)
			break
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			fail("tls.cert_file", err)
			break
		}
		tc.Certificates = []tls.Certificate{cert}
	default:
		errs = append(errs, c.Check()...)
	}
	return tc, errs
}

// Check reports what is wrong with the keys without reading a file: a
// certificate without its key, or a key without its certificate.
func (c Config) Check() []*KeyError {
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return []*KeyError{{Key: "tls.key_file", Err: errors.New("missing: cert_file is set")}}
	case c.KeyFile != "" && c.CertFile == "":
		return []*KeyError{{Key: "tls.cert_file", Err: errors.New("missing: key_file is set")}}
	}
	return nil
}

// Join is errs as one error, nil for none.
func Join(errs []*KeyError) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// IsCertificate reports a TLS failure over certificates, on either side:
// ours not trusting the server's, or the server refusing ours. Waiting
// will not make a certificate trusted: an operator has to fix tls.* (or
// the server's certificate).
func IsCertificate(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
	)
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48, 116: // bad, unsupported, revoked, expired, unknown certificate; unknown CA; certificate required
			return true
		}
	}
	// Over TCP an alert from the server arrives as an unexported type
	// inside a net.OpError ("remote error: tls: certificate required").
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && strings.Contains(op.Err.Error(), "certificate") {
		return true
	}
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
