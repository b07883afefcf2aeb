package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/testproc"
)

// The API server serves on TCP and on the unix socket; a socket it cannot
// bind stops it with the file and key, and leaves the TCP port free;
// Close stops both and removes the socket file.
func TestAPIServerOpensBothListenersOrNeither(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })

	taken := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(taken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testproc.FreeAddr(t)
	s := newAPIServer(config.HTTP{Listen: addr, Socket: taken}, "/etc/sluice/sluice.yaml", hello, log)
	err := s.Open()
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "http.socket" || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("open with a file in the socket's place: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the TCP port stays bound after a failed open: %v", err)
	}
	ln.Close()

	sock := filepath.Join(dir, "ok.sock")
	s = newAPIServer(config.HTTP{Listen: addr, Socket: sock}, "/etc/sluice/sluice.yaml", hello, log)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	overSocket := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.socketPath())
	}}}
	tcp := &http.Client{Transport: &http.Transport{}}
	for what, c := range map[string]*http.Client{"tcp": tcp, "socket": overSocket} {
		resp, err := c.Get("http://" + s.Addr().String() + "/")
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" {
			t.Errorf("%s: %q", what, body)
		}
		c.CloseIdleConnections()
	}
	s.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket file is left after Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the TCP listener still accepts after Close")
	}
}
