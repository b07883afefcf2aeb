package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/capread"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

// endpoint is where the running agent is reached: its unix socket
// (http.socket), else its TCP listener (http.listen) with the token in
// http.token_file, if any.
type endpoint struct {
	socket    string // "" for none
	addr      string // host:port to connect to
	tokenFile string // "" for none
}

// agentEndpoint finds the running agent from the config file, or at the
// -addr flag's TCP address. A config that no longer loads (the case a
// rejected reload leaves) still names the agent's socket and listener,
// so that `sluice status` can show what is wrong and `sluice reload` can
// be told why: the main file is then read for its http section alone.
func agentEndpoint(cfgPath, flagAddr string) (endpoint, error) {
	h, err := httpConfig(cfgPath)
	if flagAddr != "" {
		addr, aerr := dialable(flagAddr)
		return endpoint{addr: addr, tokenFile: h.TokenFile}, aerr
	}
	if err != nil {
		return endpoint{}, err
	}
	addr, err := dialable(h.Listen)
	return endpoint{socket: h.Socket, addr: addr, tokenFile: h.TokenFile}, err
}

func httpConfig(cfgPath string) (config.HTTP, error) {
	cfg, err := config.Load(cfgPath, all.Types.Configs())
	if err == nil {
		return cfg.HTTP, nil
	}
	if h, ok := httpFromFile(cfgPath); ok {
		return h, nil
	}
	return config.HTTP{}, err
}

// httpFromFile reads the http section of a main config file that does
// not load as a whole, with the environment's overrides and the
// defaults, paths resolved as config.Load does.
func httpFromFile(path string) (config.HTTP, bool) {
	if path == "" {
		path = config.DefaultPath
	}
	raw, err := capread.File(path, capread.Config, "a config file")
	if err != nil {
		return config.HTTP{}, false
	}
	var doc struct {
		HTTP struct {
			Listen    *string `yaml:"listen"`
			Socket    *string `yaml:"socket"`
			TokenFile *string `yaml:"token_file"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return config.HTTP{}, false
	}
	h := config.Default().HTTP
	set := func(dst *string, v *string, env string) {
		if v != nil {
			*dst = *v
		}
		if v, ok := os.LookupEnv(config.EnvPrefix + env); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	set(&h.Listen, doc.HTTP.Listen, "HTTP__LISTEN")
	set(&h.Socket, doc.HTTP.Socket, "HTTP__SOCKET")
	set(&h.TokenFile, doc.HTTP.TokenFile, "HTTP__TOKEN_FILE")
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		if a, err := filepath.Abs(filepath.Join(filepath.Dir(path), p)); err == nil {
			return a
		}
		return p
	}
	h.Socket, h.TokenFile = abs(h.Socket), abs(h.TokenFile)
	return h, true
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":9273", "0.0.0.0:9273") means this machine.
func dialable(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// dialError marks a failure to connect, as opposed to one of a
// connection made.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newClient(dial func(ctx context.Context) (net.Conn, error)) *http.Client {
	return &http.Client{Transport: &http.Transport{
		// No proxy: the token must go to the agent alone.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dial(ctx)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConns:    1,
		IdleConnTimeout: time.Second,
	}}
}

// agentClient sends requests to the agent: over its socket if the config
// names one and it can be connected to, else over TCP.
type agentClient struct {
	ep endpoint
	// socketErr is why the socket could not be used, once a request
	// went over TCP instead; it is part of any error that follows.
	socketErr error
}

func (c *agentClient) do(ctx context.Context, method, path string) (*http.Response, error) {
	if c.ep.socket != "" && c.socketErr == nil {
		var d net.Dialer
		cl := newClient(func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "unix", c.ep.socket) })
		resp, err := send(ctx, cl, "http://localhost", method, path, "")
		var de *dialError
		if err == nil || !errors.As(err, &de) {
			return resp, err
		}
		c.socketErr = fmt.Errorf("cannot connect to the agent's socket: %w%s", de.err, socketHint(de.err))
	}
	token, terr := "", error(nil)
	if c.ep.tokenFile != "" {
		token, terr = agent.ReadToken(c.ep.tokenFile)
	}
	var d net.Dialer
	cl := newClient(func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", c.ep.addr) })
	resp, err := send(ctx, cl, "http://"+c.ep.addr, method, path, token)
	if err != nil {
		return nil, c.wrap(fmt.Errorf("is the agent running? %w", err))
	}
	if terr != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		c.socketErr = errors.Join(c.socketErr, fmt.Errorf("http.token_file: %w", terr))
	}
	return resp, nil
}

func socketHint(err error) string {
	if errors.Is(err, os.ErrPermission) {
		return " (it is for root and the agent's group: sudo, or `usermod -aG sluice $USER`)"
	}
	return ""
}

func send(ctx context.Context, cl *http.Client, base, method, path, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return cl.Do(req)
}

// wrap adds why the socket was not used to an error of a request that
// went over TCP.
func (c *agentClient) wrap(err error) error {
	if c.socketErr == nil {
		return err
	}
	return fmt.Errorf("%w\n(%v)", err, c.socketErr)
}

// refused turns an answer the command did not expect into an error with
// the agent's message.
func (c *agentClient) refused(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(msg))
	if text == "" {
		return c.wrap(fmt.Errorf("%s", resp.Status))
	}
	return c.wrap(fmt.Errorf("%s: %s", resp.Status, text))
}

func isJSON(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "application/json"
}

func (c *agentClient) fetchStatus(ctx context.Context) (agent.Status, error) {
	var st agent.Status
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, c.refused(resp)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// requestReload asks the agent to reload and returns its answer: a
// rejected config is an answer (OK false, the errors), not an error.
func (c *agentClient) requestReload(ctx context.Context) (agent.ReloadResponse, error) {
	var rr agent.ReloadResponse
	resp, err := c.do(ctx, http.MethodPost, "/api/v1/reload")
	if err != nil {
		return rr, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
		if isJSON(resp) {
			if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
				return rr, fmt.Errorf("reload: %s: %w", resp.Status, err)
			}
			return rr, nil
		}
	}
	return rr, c.refused(resp)
}

// tap streams a feed's points: point lines to out, the agent's comment
// lines (starting with #) to notes, each made safe for a terminal. It
// returns when ctx ends or the agent closes the stream.
func (c *agentClient) tap(ctx context.Context, feed, measurement string, out, notes io.Writer) error {
	q := url.Values{"feed": {feed}}
	if measurement != "" {
		q.Set("measurement", measurement)
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/tap?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.refused(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		w := out
		if strings.HasPrefix(line, "#") {
			w = notes
		}
		if _, err := fmt.Fprintln(w, printable(line)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() == nil {
		fmt.Fprintln(notes, "# the agent ended the stream")
	}
	return nil
}

// clientTimeout bounds status and reload requests.
const clientTimeout = 2 * time.Minute
