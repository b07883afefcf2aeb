// Package testnats runs real NATS servers with JetStream on loopback for
// tests: one embedded in the test process (Start), or a cluster of
// nats-server processes built from the Go module (StartCluster), whose
// nodes a test can kill -9 and restart.
package testnats

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WaitTimeout bounds every wait in this package.
const WaitTimeout = 30 * time.Second

// Server is one embedded NATS server with JetStream, its data in a
// directory of the test's.
type Server struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// Options adjust an embedded server.
type Options struct {
	// User and Password, when set, are required of every client.
	User, Password string
	// MaxPayload caps a message's size (default 1 MiB).
	MaxPayload int32
	// NKey, when set, is the public key of the one user allowed in.
	NKey string
}

// Start runs an embedded server on a free loopback port until the test
// ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		ServerName: "sluice-test",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		Username:   o.User,
		Password:   o.Password,
		MaxPayload: o.MaxPayload,
	}}
	if o.NKey != "" {
		s.opts.Nkeys = []*server.NkeyUser{{Nkey: o.NKey}}
	}
	s.start()
	// Restarts keep the port, so that clients find it again.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(WaitTimeout) {
		srv.Shutdown()
		s.t.Fatal("nats-server not ready")
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// URL is the client URL (without credentials).
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Shutdown stops the server and closes its listeners.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Connect returns a client connection for the test, with JetStream,
// closed at the end of the test.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Cluster is nats-server processes forming one JetStream cluster on
// loopback.
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*node
}

type node struct {
	name, config  string
	client, route int
	mu            sync.Mutex
	cmd           *exec.Cmd
	exited        chan struct{}
	log           *os.File
}

// StartCluster starts n nodes (one: a single server, no cluster) and
// waits until JetStream has a meta leader. The processes are killed at the end of the test.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t)}
	dir := t.TempDir()
	clients, routes := freePorts(t, n), freePorts(t, n)
	var routeURLs []string
	for _, p := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		nd := &node{name: fmt.Sprintf("n%d", i+1), client: clients[i], route: routes[i]}
		store := filepath.Join(dir, nd.name)
		nd.config = filepath.Join(dir, nd.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
`, nd.name, nd.client, store)
		if n > 1 { // one node is a server of its own, no cluster
			conf += fmt.Sprintf(`cluster {
  name: sluice-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, nd.route, strings.Join(routeURLs, ", "))
		}
		if err := os.WriteFile(nd.config, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Kill(i)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				if b, err := os.ReadFile(nd.config + ".log"); err == nil {
					t.Logf("%s log (tail):\n%s", nd.name, tail(string(b), 4000))
				}
			}
		}
	})
	c.WaitReady()
	return c
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	logf, err := os.OpenFile(nd.config+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", nd.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
	deadline := time.Now().Add(WaitTimeout)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nd.client), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(nd.config + ".log")
			c.t.Fatalf("nats-server %s exited at start:\n%s", nd.name, tail(string(b), 4000))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s does not listen on %d", nd.name, nd.client)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URLs is every node's client URL, comma-separated.
func (c *Cluster) URLs() string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", nd.client))
	}
	return strings.Join(out, ",")
}

// Kill sends SIGKILL to node i and waits until it is gone: its listeners
// are closed.
func (c *Cluster) Kill(i int) {
	nd := c.nodes[i]
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts node i again on its ports and data.
func (c *Cluster) Restart(i int) { c.t.Helper(); c.start(i) }

// WaitReady waits until every node answers and JetStream answers API
// requests (the cluster has a meta leader).
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for _, nd := range c.nodes {
		url := fmt.Sprintf("nats://127.0.0.1:%d", nd.client)
		for {
			err := jsReady(url)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("JetStream on %s not ready: %v", nd.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func jsReady(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns a nats-server binary built from the module's own
// github.com/nats-io/nats-server/v2, kept between runs in the system's
// temporary directory under its version.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildServer() })
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

const serverModule = "github.com/nats-io/nats-server/v2"

func buildServer() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", serverModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", serverModule, err)
	}
	version := strings.TrimSpace(string(out))
	path := filepath.Join(os.TempDir(), "sluice-test-nats-server-"+version)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, serverModule)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", serverModule, err, b)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}
