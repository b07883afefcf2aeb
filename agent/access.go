package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"unicode"

	"github.com/sluicehq/sluice/internal/capread"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/logsample"
)

// Who may do what on the HTTP API. The unix socket (http.socket, mode
// 0660) serves every endpoint: the file's mode is its access control. TCP
// (http.listen) serves, without a token, only what reads; with a token
// (http.token_file), everything but the health probes needs it. On both,
// every request must name this agent in its Host header (DNS rebinding),
// and a request that changes something must not come from another web
// origin nor carry a body a cross-site form could send (CSRF).
//
// Answers, in the order the checks run:
//
//	421  the Host header names another host
//	403  over TCP without a token: an endpoint beyond the read-only ones
//	401  over TCP with a token: missing or wrong
//	403  a cross-origin browser request that changes something
//	415  a body that is not application/json

// MaxTokenBytes bounds a token file.
const MaxTokenBytes = 4 << 10

// minTokenLen keeps guessable tokens out.
const minTokenLen = 16

// ReadToken reads a bearer token from file: one word of at least 16
// printable characters, surrounding whitespace trimmed, the file at most
// MaxTokenBytes. Nothing read from the file is ever part of an error.
func ReadToken(file string) (string, error) {
	b, err := capread.File(file, MaxTokenBytes, "a token file")
	if err != nil {
		return "", fmt.Errorf("cannot read token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	switch {
	case token == "":
		return "", fmt.Errorf("token file %s is empty", file)
	case strings.IndexFunc(token, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsGraphic(r) || r == ' ' }) >= 0:
		return "", fmt.Errorf("token file %s must hold one word of printable ASCII characters", file)
	case len(token) < minTokenLen:
		return "", fmt.Errorf("token in %s is shorter than %d characters (make one with `openssl rand -hex 32`)", file, minTokenLen)
	}
	return token, nil
}

// apiAccess admits requests to the HTTP API and hands the rest to next.
type apiAccess struct {
	next   http.Handler
	token  []byte // SHA-256 of the bearer token; nil without http.token_file
	hosts  map[string]bool
	socket string // for messages
	csrf   *http.CrossOriginProtection
	log    *slog.Logger
	warned *logsample.Sampler
}

// newAPIAccess reads http.token_file, if set.
func newAPIAccess(cfg *config.Config, next http.Handler, log *slog.Logger) (*apiAccess, error) {
	h := cfg.HTTP
	a := &apiAccess{
		next: next, hosts: make(map[string]bool), socket: h.Socket,
		csrf: http.NewCrossOriginProtection(), log: log, warned: logsample.New(sampleEvery, nil),
	}
	for _, name := range h.AllowedHosts {
		a.hosts[name] = true
	}
	if h.TokenFile != "" {
		token, err := ReadToken(h.TokenFile)
		if err != nil {
			return nil, &config.Error{File: cfg.File, Key: "http.token_file", Msg: err.Error(), Err: err}
		}
		sum := sha256.Sum256([]byte(token))
		a.token = sum[:]
		if st, err := os.Stat(h.TokenFile); err == nil && st.Mode().Perm()&0o004 != 0 {
			log.Warn("the HTTP token file is readable by every user of this host", "file", h.TokenFile)
		}
	}
	return a, nil
}

// viaSocketKey marks the context of a request that came over the unix
// socket.
type viaSocketKey struct{}

// connContext is the server's ConnContext.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*net.UnixConn); ok {
		return context.WithValue(ctx, viaSocketKey{}, true)
	}
	return ctx
}

func viaSocket(r *http.Request) bool {
	v, _ := r.Context().Value(viaSocketKey{}).(bool)
	return v
}

func (a *apiAccess) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.hostAllowed(r) {
		a.refuse(w, r, http.StatusMisdirectedRequest, "foreign_host", fmt.Sprintf(
			"Host %q does not name this agent: use localhost or 127.0.0.1, or list the name in http.allowed_hosts", r.Host))
		return
	}
	if !viaSocket(r) {
		switch {
		case a.token == nil && !readOnly(r):
			where := "http.socket is not set"
			if a.socket != "" {
				where = "http.socket: " + a.socket
			}
			a.refuse(w, r, http.StatusForbidden, "tcp_not_enabled", fmt.Sprintf(
				"%s %s is not served over TCP: use the agent's unix socket (%s), as `sluice reload` and `sluice tap` do, or set http.token_file to serve it over TCP to clients that send the token",
				r.Method, r.URL.Path, where))
			return
		case a.token != nil && !probe(r) && !a.bearerOK(r):
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			a.refuse(w, r, http.StatusUnauthorized, "bad_token",
				`missing or wrong token: send "Authorization: Bearer <the token in http.token_file>"`)
			return
		}
	}
	if err := a.csrf.Check(r); err != nil {
		a.refuse(w, r, http.StatusForbidden, "cross_origin", fmt.Sprintf(
			"%s %s refused: a web page of another origin may not call it", r.Method, r.URL.Path))
		return
	}
	if !safeMethod(r.Method) {
		if msg := checkBody(r); msg != "" {
			a.refuse(w, r, http.StatusUnsupportedMediaType, "content_type", msg)
			return
		}
	}
	a.next.ServeHTTP(w, r)
}

func (a *apiAccess) refuse(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	if a.warned.Allow(reason) {
		a.log.Warn("HTTP request refused", "reason", reason, "status", code, "method", r.Method,
			"path", r.URL.Path, "host", r.Host, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
	}
	http.Error(w, msg, code)
}

// hostAllowed reports whether the Host header names this agent: a
// loopback name, the IP address the request came in on (a DNS-rebinding
// page always sends its own host name), or a name in http.allowed_hosts.
func (a *apiAccess) hostAllowed(r *http.Request) bool {
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	name = strings.ToLower(name)
	if ip := net.ParseIP(name); ip != nil {
		name = ip.String()
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && la.IP.Equal(ip) {
			return true
		}
	}
	switch name {
	case "":
		return false
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return a.hosts[name]
}

func (a *apiAccess) bearerOK(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the token's length out of the timing too.
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], a.token) == 1
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// probe: the health probes, open to anyone who may connect.
func probe(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
}

// readOnly: what TCP serves without a token. Everything else is refused,
// so that an endpoint added later is closed until listed here.
func readOnly(r *http.Request) bool {
	return probe(r) || (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == "/metrics" || r.URL.Path == "/api/v1/status")
}

// checkBody refuses what a cross-site form can send: a body must be JSON,
// and a request without a body must not claim another type.
func checkBody(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			return ""
		}
		return "a request body needs Content-Type: application/json"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return ""
	}
	return fmt.Sprintf("Content-Type %q is not accepted: send application/json, or no body and no Content-Type", ct)
}
