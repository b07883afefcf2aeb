package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// maxSocketPath bounds http.socket. The system's limit is 107 bytes; the
// agent first binds the socket in a private subdirectory ("/.sXXXXXXXX/s",
// 13 bytes longer than the directory) and then moves it into place, so
// that nobody can connect before its mode is set.
const maxSocketPath = 96

// http resolves the http section's paths and checks what spans its keys.
func (c *checker) http(h *HTTP, baseDir string) {
	h.Socket = resolvePath(baseDir, h.Socket)
	h.TokenFile = resolvePath(baseDir, h.TokenFile)
	for i, name := range h.AllowedHosts {
		if ip := net.ParseIP(name); ip != nil {
			name = ip.String()
		}
		h.AllowedHosts[i] = strings.ToLower(name)
	}
	path := []string{"http"}
	if n := len(h.Socket); n > maxSocketPath {
		c.errorf(child(path, "socket"), "%s is %d bytes long; a unix socket's path may have at most %d here (the system allows 107, and the agent needs a few while it creates the socket)",
			h.Socket, n, maxSocketPath)
	}
	if h.TokenFile == "" && h.Listen != "" && !LoopbackListen(h.Listen) {
		c.errorf(child(path, "listen"), "%q accepts connections from other hosts: set http.token_file too, so that they need its bearer token (every endpoint but /healthz and /readyz), or listen on 127.0.0.1", h.Listen)
	}
}

// LoopbackListen reports whether a host:port listen address is reachable
// from this host only: localhost or a loopback address. An empty host, an
// unspecified address and any other name are not.
func LoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$`)

// checkHostName accepts a DNS name or an IP address, without a port.
func checkHostName(s string) string {
	if net.ParseIP(s) != nil || (len(s) <= 253 && hostNameRE.MatchString(s)) {
		return ""
	}
	return fmt.Sprintf("must be a host name or an IP address without a port, such as \"sluice.example.com\", got %q", s)
}
