package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sluicehq/sluice/config"
)

// apiServer serves the HTTP API (handler, behind apiAccess) on
// http.listen and on the unix socket http.socket.
//
// Lifecycle: newAPIServer has no side effects. Open binds the TCP
// listener, then the socket, and serves on both; if a bind fails it
// returns the error and leaves nothing open. A socket path of "", or one
// whose directory does not exist (the default outside systemd), serves
// no socket, which is only warned about. Close stops serving, closes
// open connections (tap streams too), waits for the serve loops to end
// and removes the socket file if it is still the one Open made; it is
// called once, after a successful Open.
type apiServer struct {
	cfg     config.HTTP
	file    string // the config file, for errors
	handler http.Handler
	log     *slog.Logger

	srv  *http.Server
	ln   net.Listener
	sock *socketListener
	wg   sync.WaitGroup
}

func newAPIServer(cfg config.HTTP, file string, handler http.Handler, log *slog.Logger) *apiServer {
	return &apiServer{cfg: cfg, file: file, handler: handler, log: log}
}

// Open binds the listeners and starts serving.
func (s *apiServer) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	sock, err := s.listenSocket()
	if err != nil {
		ln.Close()
		return err
	}
	s.ln, s.sock = ln, sock
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, ConnContext: connContext}
	s.wg.Go(func() { s.serve(ln) })
	if sock != nil {
		s.wg.Go(func() { s.serve(sock) })
	}
	return nil
}

func (s *apiServer) serve(ln net.Listener) {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("API server", "error", err, "listener", ln.Addr().String())
	}
}

// listenSocket opens http.socket; nil if it is "" or its directory does
// not exist, which is only warned about.
func (s *apiServer) listenSocket() (*socketListener, error) {
	path := s.cfg.Socket
	if path == "" {
		return nil, nil
	}
	sock, err := listenSocket(path)
	if errors.Is(err, errNoSocketDir) {
		s.log.Warn("serving no unix socket: its directory does not exist, so `sluice reload` and `sluice tap` cannot reach the agent "+
			"(systemd's RuntimeDirectory=sluice makes /run/sluice; set http.socket to a path in a directory that exists, or \"\" for none)",
			"socket", path, "file", s.file)
		return nil, nil
	}
	if err != nil {
		return nil, &config.Error{File: s.file, Key: "http.socket", Msg: err.Error(), Err: err}
	}
	return sock, nil
}

// Addr is the TCP listener's address, once open.
func (s *apiServer) Addr() net.Addr { return s.ln.Addr() }

// socketPath is the unix socket served, "" for none.
func (s *apiServer) socketPath() string {
	if s.sock == nil {
		return ""
	}
	return s.sock.path
}

// Close stops serving and removes the socket file.
func (s *apiServer) Close() {
	s.srv.Close()
	s.wg.Wait()
	if s.sock != nil {
		if err := s.sock.remove(); err != nil {
			s.log.Warn("cannot remove the API socket", "socket", s.sock.path, "error", err)
		}
	}
}
