package clienttls

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testproc"
)

// handshake dials srv over loopback with c and reads a byte, so that a
// refusal the server sends after the handshake (TLS 1.3 checks the
// client's certificate then) arrives too.
func handshake(t *testing.T, addr string, c *tls.Config) error {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

func TestIsCertificate(t *testing.T) {
	quiet := log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = quiet
	srv.StartTLS()
	defer srv.Close()
	mtls := httptest.NewUnstartedServer(http.NotFoundHandler())
	mtls.Config.ErrorLog = quiet
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.StartTLS()
	defer mtls.Close()
	refused := testproc.FreeAddr(t) // nothing listens there

	for _, tc := range []struct {
		name string
		addr string
		c    *tls.Config
		want bool
	}{
		{"we do not trust the server", srv.Listener.Addr().String(), &tls.Config{ServerName: "example.com"}, true},
		{"the server wants our certificate", mtls.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}, true},
		{"trusted, no certificate asked", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}, false},
		{"nothing listens", refused, &tls.Config{InsecureSkipVerify: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, tc.addr, tc.c)
			if tc.want && err == nil {
				t.Fatal("no error")
			}
			if got := IsCertificate(err); got != tc.want {
				t.Errorf("IsCertificate(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
	if IsCertificate(nil) || IsCertificate(errors.New("certificate")) {
		t.Error("a plain error is a certificate error")
	}
}
