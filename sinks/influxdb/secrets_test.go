package influxdb

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testinflux"
	"github.com/sluicehq/sluice/internal/testproc"
	"github.com/sluicehq/sluice/sinks"
)

// canary is a password that must appear in no log line and no error.
const canary = "CANARY-influx-9c2e"

// A user:password@ URL (which InfluxDB 1.8 takes as basic auth) and a
// secret query parameter stay out of the log and of every error, whether
// InfluxDB is down or refuses the password.
func TestURLSecretsNeverLogged(t *testing.T) {
	srv := testinflux.StartWith(t, testinflux.Options{AuthUser: "sluice", AuthPassword: canary})
	real, _ := url.Parse(srv.URL())
	for _, c := range []struct {
		name    string
		url     string
		wantErr bool
	}{
		{"down", "http://sluice:" + canary + "@" + testproc.FreeAddr(t) + "/?token=" + canary, true},
		{"refused", "http://sluice:" + canary + "x@" + real.Host, true},
		// The password in the URL works: the same sink writes.
		{"works", "http://sluice:" + url.PathEscape(canary) + "@" + real.Host, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := New(Config{URL: c.url, Bucket: testinflux.Bucket}, log)
			if err := s.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err := s.Write(context.Background(), trades(1, 3, 1, 0))
			if (err != nil) != c.wantErr {
				t.Fatalf("Write: %v", err)
			}
			out := logs.String() + fmt.Sprint(err)
			if strings.Contains(out, canary) {
				t.Errorf("the password shows:\n%s", out)
			}
			if c.name == "down" && (!strings.Contains(logs.String(), "sluice:REDACTED@") || !strings.Contains(err.Error(), "sluice:REDACTED@")) {
				t.Errorf("the URL should still show where it points:\nlog: %s\nerr: %v", logs.String(), err)
			}
			if c.name == "refused" && !sinks.IsFailed(err) {
				t.Errorf("a refused password: %v, want a FailedError", err)
			}
		})
	}
}

func TestTLSFilesAreCapped(t *testing.T) {
	big := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []TLS{
		{CAFile: big},
		{CAFile: "/dev/zero"},
		{CertFile: "/dev/zero", KeyFile: "/dev/zero"},
	} {
		err := New(Config{URL: "https://127.0.0.1:1", Bucket: "b", TLS: c}, nil).Open(context.Background())
		if err == nil || !strings.Contains(err.Error(), "is larger than 1 MiB, the limit for a PEM file") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
