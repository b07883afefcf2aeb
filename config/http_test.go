package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/config"
)

// A listener other hosts can reach needs a token file; the error names
// the file (or variable) and the key.
func TestHTTPListenBeyondLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for listen, ok := range map[string]bool{
		"127.0.0.1:9273": true, "127.0.0.2:1": true, "localhost:9273": true, "[::1]:9273": true,
		":9273": false, "0.0.0.0:9273": false, "[::]:9273": false, "10.1.2.3:9273": false, "myhost:9273": false,
	} {
		path := writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\nhttp:\n  listen: \""+listen+"\"\n")
		_, err := loadWithEnv(path, nil)
		if ok {
			if err != nil {
				t.Errorf("listen %s: %v", listen, err)
			}
			continue
		}
		want := path + `: http.listen: "` + listen + `" accepts connections from other hosts: set http.token_file too`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("listen %s without a token: %v; want %s...", listen, err, want)
		}
		// With a token file it is accepted.
		path = writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\nhttp:\n  listen: \""+listen+"\"\n  token_file: http.token\n")
		if _, err := loadWithEnv(path, nil); err != nil {
			t.Errorf("listen %s with a token file: %v", listen, err)
		}
	}

	// Set from the environment, the error names the variable.
	path := writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\n")
	_, err := loadWithEnv(path, []string{"SLUICE_HTTP__LISTEN=:9273"})
	if want := `env SLUICE_HTTP__LISTEN: http.listen: ":9273" accepts connections`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("from the environment: %v; want %s...", err, want)
	}
}

func TestHTTPKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
http:
  socket: run/s.sock
  token_file: secret/http.token
  allowed_hosts: [Sluice.Example, "10.0.0.7", "FD00::1"]
  max_tap_clients: 3
`)
	cfg, err := loadWithEnv(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if h.Socket != filepath.Join(dir, "run", "s.sock") || h.TokenFile != filepath.Join(dir, "secret", "http.token") {
		t.Errorf("paths not resolved against the file's directory: %+v", h)
	}
	if strings.Join(h.AllowedHosts, ",") != "sluice.example,10.0.0.7,fd00::1" || h.MaxTapClients != 3 {
		t.Errorf("allowed_hosts %q, max_tap_clients %d", h.AllowedHosts, h.MaxTapClients)
	}
	if d := config.Default().HTTP; d.Socket != "/run/sluice/sluice.sock" || d.MaxTapClients != 8 || d.TokenFile != "" {
		t.Errorf("defaults: %+v", d)
	}
	// "" turns the socket off.
	path = writeFile(t, dir, "off.yaml", "feeds_dir: \"\"\nhttp: {socket: \"\"}\n")
	if cfg, err := loadWithEnv(path, nil); err != nil || cfg.HTTP.Socket != "" {
		t.Errorf("socket \"\": %v, %q", err, cfg.HTTP.Socket)
	}
}

func TestHTTPInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := "/" + strings.Repeat("d", 90) + "/sluice.sock"
	for body, want := range map[string]string{
		"http: {socket: " + long + "}":                  "http.socket: " + long + " is 103 bytes long; a unix socket's path may have at most 96",
		"http: {allowed_hosts: [evil.example:80]}":      `http.allowed_hosts[0]: must be a host name or an IP address without a port, such as "sluice.example.com", got "evil.example:80"`,
		"http: {allowed_hosts: [\"*.example\"]}":        `http.allowed_hosts[0]: must be a host name or an IP address without a port`,
		"http: {allowed_hosts: [\"http://x.example\"]}": `http.allowed_hosts[0]: must be a host name or an IP address without a port`,
		"http: {allowed_hosts: x.example}":              `http.allowed_hosts: must be a list`,
		"http: {max_tap_clients: 0}":                    `http.max_tap_clients: must be a positive integer, got 0`,
		"http: {token_file: 7}":                         `http.token_file: must be a string`,
	} {
		path := writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\n"+body+"\n")
		_, err := loadWithEnv(path, nil)
		if want := path + ": " + want; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v\nwant %s...", body, err, want)
		}
	}
}
