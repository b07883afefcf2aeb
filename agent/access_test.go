package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/config"
)

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "t")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadToken(write("  0123456789abcdef0123\n")); err != nil || tok != "0123456789abcdef0123" {
		t.Errorf("good token: %q, %v", tok, err)
	}
	for body, want := range map[string]string{
		"":                                   "is empty",
		" \n":                                "is empty",
		"abcd12":                             "shorter than 16",
		"0123456789abcdef 0123456789abcdef":  "one word",
		"0123456789abcdef\n0123456789":       "one word",
		"0123456789abcdef\x1b[2J":            "one word",
		strings.Repeat("a", MaxTokenBytes+1): "larger than 4 KiB",
	} {
		_, err := ReadToken(write(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("token %.20q: %v, want %q", body, err, want)
		}
		if err != nil && len(body) > 4 && strings.Contains(err.Error(), body[:5]) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	if _, err := ReadToken(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := ReadToken(filepath.Join(dir, "nosuch")); err == nil {
		t.Error("a missing file: no error")
	}
}

// The access checks, request by request, over both transports.
func TestAPIAccess(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newAccess := func(tokenFile string) *apiAccess {
		cfg := &config.Config{File: "sluice.yaml", HTTP: config.HTTP{Socket: "/run/sluice/sluice.sock", TokenFile: tokenFile, AllowedHosts: []string{"sluice.test", "10.9.8.7"}}}
		a, err := newAPIAccess(cfg, ok, log)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	open, locked := newAccess(""), newAccess(tokenFile)
	local := &net.TCPAddr{IP: net.ParseIP("192.168.1.5"), Port: 9273}

	type hdr map[string]string
	for _, tt := range []struct {
		name   string
		access *apiAccess
		socket bool
		method string
		path   string
		host   string
		header hdr
		body   string
		want   int
	}{
		{"status over tcp", open, false, "GET", "/api/v1/status", "127.0.0.1:9273", nil, "", 200},
		{"metrics over tcp", open, false, "GET", "/metrics", "localhost:9273", nil, "", 200},
		{"head healthz", open, false, "HEAD", "/healthz", "[::1]:9273", nil, "", 200},
		{"reload over tcp", open, false, "POST", "/api/v1/reload", "127.0.0.1:9273", nil, "", 403},
		{"tap over tcp", open, false, "GET", "/api/v1/tap", "127.0.0.1:9273", nil, "", 403},
		{"unknown path over tcp", open, false, "GET", "/debug/pprof/", "127.0.0.1:9273", nil, "", 403},
		{"reload over the socket", open, true, "POST", "/api/v1/reload", "localhost", nil, "", 200},
		{"tap over the socket", open, true, "GET", "/api/v1/tap", "localhost", nil, "", 200},
		{"foreign host", open, false, "GET", "/healthz", "evil.example:9273", nil, "", 421},
		{"foreign host on the socket", open, true, "POST", "/api/v1/reload", "evil.example", nil, "", 421},
		{"no host", open, true, "GET", "/healthz", "", nil, "", 421},
		{"allowed host", open, false, "GET", "/api/v1/status", "Sluice.Test:9273", nil, "", 200},
		{"allowed ip", open, false, "GET", "/api/v1/status", "10.9.8.7", nil, "", 200},
		{"the local address", open, false, "GET", "/api/v1/status", "192.168.1.5:9273", nil, "", 200},
		{"another ip", open, false, "GET", "/api/v1/status", "192.168.1.6:9273", nil, "", 421},
		{"cross-site", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Sec-Fetch-Site": "cross-site"}, "", 403},
		{"same-origin", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Sec-Fetch-Site": "same-origin"}, "", 200},
		{"foreign origin", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Origin": "http://evil.example"}, "", 403},
		{"own origin", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Origin": "http://localhost"}, "", 200},
		{"text/plain", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Content-Type": "text/plain"}, "x", 415},
		{"form", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Content-Type": "application/x-www-form-urlencoded"}, "a=b", 415},
		{"body without a type", open, true, "POST", "/api/v1/reload", "localhost", nil, "x", 415},
		{"json", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Content-Type": "application/json; charset=utf-8"}, "{}", 200},
		{"empty body with a type", open, true, "POST", "/api/v1/reload", "localhost", hdr{"Content-Type": "text/plain"}, "", 415},
		{"token: probe", locked, false, "GET", "/readyz", "127.0.0.1", nil, "", 200},
		{"token: status without", locked, false, "GET", "/api/v1/status", "127.0.0.1", nil, "", 401},
		{"token: reload", locked, false, "POST", "/api/v1/reload", "127.0.0.1", hdr{"Authorization": "Bearer " + token}, "", 200},
		{"token: scheme case", locked, false, "GET", "/api/v1/tap", "127.0.0.1", hdr{"Authorization": "bearer " + token}, "", 200},
		{"token: wrong", locked, false, "GET", "/api/v1/tap", "127.0.0.1", hdr{"Authorization": "Bearer " + token[1:]}, "", 401},
		{"token: basic", locked, false, "GET", "/metrics", "127.0.0.1", hdr{"Authorization": "Basic " + token}, "", 401},
		{"token: not needed on the socket", locked, true, "GET", "/api/v1/tap", "localhost", nil, "", 200},
		{"token: cross-site with it", locked, false, "POST", "/api/v1/reload", "127.0.0.1", hdr{"Authorization": "Bearer " + token, "Origin": "http://evil.example"}, "", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(tt.method, "http://x"+tt.path, body)
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			ctx := context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local))
			if tt.socket {
				ctx = context.WithValue(ctx, viaSocketKey{}, true)
			}
			w := httptest.NewRecorder()
			tt.access.ServeHTTP(w, r.WithContext(ctx))
			if w.Code != tt.want {
				t.Errorf("%d %q, want %d", w.Code, w.Body.String(), tt.want)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") != `Bearer realm="sluice"` {
				t.Errorf("401 without WWW-Authenticate: %v", w.Header())
			}
		})
	}
}
