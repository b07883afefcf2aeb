package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/config"
)

// agentAddr finds the running agent's http.listen: the -addr flag, else
// the config file's. A config that no longer loads (the case a rejected
// reload leaves) still names its listener, so that `sluice status` can
// show what is wrong: the main file is then read for http.listen alone.
func agentAddr(cfgPath, flagAddr string) (string, error) {
	if flagAddr != "" {
		return dialable(flagAddr)
	}
	if cfg, err := config.Load(cfgPath); err == nil {
		return dialable(cfg.HTTP.Listen)
	} else if listen, ok := listenFromFile(cfgPath); ok {
		return dialable(listen)
	} else {
		return "", err
	}
}

func listenFromFile(path string) (string, bool) {
	if path == "" {
		path = config.DefaultPath
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	var doc struct {
		HTTP struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", false
	}
	listen := doc.HTTP.Listen
	if v := os.Getenv(config.EnvPrefix + "HTTP__LISTEN"); v != "" {
		listen = v
	}
	if listen == "" {
		listen = config.Default().HTTP.Listen
	}
	return listen, true
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

func fetchStatus(ctx context.Context, addr string) (agent.Status, error) {
	var st agent.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// requestReload asks the agent to reload and returns its answer.
func requestReload(ctx context.Context, addr string) (agent.ReloadResponse, error) {
	var rr agent.ReloadResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1/reload", nil)
	if err != nil {
		return rr, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rr, fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		return rr, fmt.Errorf("reload: %s: %w", resp.Status, err)
	}
	return rr, nil
}

// tap streams a feed's points: point lines to out, the agent's comment
// lines (starting with #) to notes. It returns when ctx ends or the agent
// closes the stream.
func tap(ctx context.Context, addr, feed, measurement string, out, notes io.Writer) error {
	q := url.Values{"feed": {feed}}
	if measurement != "" {
		q.Set("measurement", measurement)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/tap?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s", strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		w := out
		if strings.HasPrefix(line, "#") {
			w = notes
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
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
