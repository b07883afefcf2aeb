package config

import (
	"fmt"
	"reflect"
	"regexp"
	"time"

	"github.com/sluicehq/sluice/internal/natsbus"
)

// Cluster is the `cluster:` section. Agents that name the same NATS
// servers and cluster name divide their configured feeds among
// themselves through JetStream KV leases (agent/cluster): each feed runs
// on one of them, or on feeds.<name>.replicas of them. Without the
// section every feed runs on this agent.
type Cluster struct {
	URL string `config:"url,required" doc:"NATS servers holding the cluster's KV buckets: one URL or several, comma-separated (nats:// or tls://)"`
	// Name names the KV buckets: sluice_<name>_leases and
	// sluice_<name>_positions.
	Name string `config:"name,required" doc:"the cluster's name; agents with the same name share feeds (letters, digits, '_' and '-')"`
	// Agent is this agent's name in the cluster; "" means the host name.
	Agent      string        `config:"agent,empty" doc:"this agent's name in the cluster, unique in it; empty: the host name"`
	LeaseTTL   time.Duration `config:"lease_ttl" doc:"a lease not renewed for this long expires and its feed moves to another agent"`
	KVReplicas int           `config:"kv_replicas,zero" doc:"replicas of the cluster's KV buckets when they are created: 1 to 5; 0: 3 on a cluster of three or more servers, else 1"`
	Timeout    time.Duration `config:"timeout" doc:"bounds connecting and each KV request (at most a quarter of lease_ttl is used)"`

	User            string     `config:"user" doc:"user name, with password"`
	Password        string     `config:"password,secret" doc:"password, with user; better set by SLUICE_CLUSTER__PASSWORD"`
	Token           string     `config:"token,secret" doc:"authentication token"`
	CredentialsFile string     `config:"credentials_file,path=config_dir" doc:"a .creds file (user JWT and NKey seed)"`
	NKeyFile        string     `config:"nkey_file,path=config_dir" doc:"a file holding an NKey seed"`
	TLS             ClusterTLS `config:"tls" doc:"client TLS for tls:// servers"`
}

// ClusterTLS is the client side of TLS to the cluster's servers.
type ClusterTLS struct {
	CAFile             string `config:"ca_file,path=config_dir" doc:"CA bundle to trust instead of the system's"`
	CertFile           string `config:"cert_file,path=config_dir" doc:"client certificate, for mutual TLS; with key_file"`
	KeyFile            string `config:"key_file,path=config_dir" doc:"client certificate's key; with cert_file"`
	ServerName         string `config:"server_name" doc:"name expected in the server's certificate, if not the URL's host"`
	InsecureSkipVerify bool   `config:"insecure_skip_verify" doc:"skip verifying the server's certificate; for testing only"`
}

// Defaults of the cluster section.
const (
	DefaultLeaseTTL       = 10 * time.Second
	DefaultClusterTimeout = 5 * time.Second
	// MinLeaseTTL is the shortest lease_ttl: renewals go every quarter
	// of it, and each must reach a quorum of the KV's servers.
	MinLeaseTTL = time.Second
)

// DefaultCluster is the cluster section before its keys are read.
func DefaultCluster() Cluster {
	return Cluster{LeaseTTL: DefaultLeaseTTL, Timeout: DefaultClusterTimeout}
}

// Client is how to reach the cluster's servers.
func (c *Cluster) Client() natsbus.Client {
	return natsbus.Client{
		URL: c.URL, User: c.User, Password: c.Password, Token: c.Token,
		CredentialsFile: c.CredentialsFile, NKeyFile: c.NKeyFile,
		TLS: natsbus.TLS{
			CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
			ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
	}
}

var clusterSpec = mustStructSpec(reflect.TypeFor[Cluster]())

func mustStructSpec(t reflect.Type) *spec {
	s, err := structSpec(t)
	if err != nil {
		panic(fmt.Sprintf("config: %s: %v", t, err))
	}
	return s
}

// clusterNameRE: the name goes into KV bucket names, which allow no more.
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// cluster decodes the cluster section, if the config has one, resolves
// its paths and checks what spans its keys.
func (c *checker) cluster(norm any, baseDir, dataDir string) *Cluster {
	m, ok := norm.(map[string]any)
	if !ok {
		return nil
	}
	path := []string{"cluster"}
	cl := DefaultCluster()
	c.decode(path, m, &cl)
	c.resolvePaths(reflect.ValueOf(&cl).Elem(), bases{pathConfigDir: baseDir, pathDataDir: dataDir})
	blame := func(key, format string, args ...any) {
		if !c.failed[pathID(child(path, key))] {
			c.errorf(child(path, key), format, args...)
		}
	}
	if _, set := m["name"]; set && !clusterNameRE.MatchString(cl.Name) {
		blame("name", "%q: use 1 to 64 letters, digits, '_' and '-'", cl.Name)
	}
	if cl.Agent != "" && (!validName(cl.Agent) || len(cl.Agent) > 128) {
		blame("agent", "invalid agent name %q: %s (at most 128)", cl.Agent, nameRule)
	}
	if cl.LeaseTTL < MinLeaseTTL {
		blame("lease_ttl", "must be at least %s, got %s", MinLeaseTTL, cl.LeaseTTL)
	}
	if cl.KVReplicas < 0 || cl.KVReplicas > 5 {
		blame("kv_replicas", "must be 0 (automatic) or 1 to 5, got %d", cl.KVReplicas)
	}
	client := cl.Client()
	for _, fe := range client.Validate() {
		if _, set := m["url"]; fe.Key == "url" && !set {
			continue // reported as missing
		}
		blame(fe.Key, "%s", fe.Msg)
	}
	return &cl
}
