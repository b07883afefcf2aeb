package config_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
)

// Without a cluster section there is no cluster and every feed has one
// replica; with one, its defaults fill what it leaves out, its paths are
// absolute, and the environment can set every key, the password among
// them, which neither the rendered config nor an error shows.
func TestClusterSection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.yaml", `feeds_dir: ""
sinks: {db: {type: sqlite}}
feeds: {f: {plugin: synth, sinks: [db]}}
`)
	cfg, err := loadWithEnv(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster != nil || cfg.Feeds["f"].Replicas != 1 {
		t.Errorf("no cluster section: cluster %+v, replicas %d", cfg.Cluster, cfg.Feeds["f"].Replicas)
	}
	if s := cfg.String(); strings.Contains(s, "cluster") {
		t.Errorf("a config without a cluster section renders one:\n%s", s)
	}

	cfg, err = loadWithEnv(plain, []string{
		"SLUICE_CLUSTER__URL=nats://127.0.0.1:4222",
		"SLUICE_CLUSTER__NAME=fleet",
		"SLUICE_CLUSTER__USER=sluice",
		"SLUICE_CLUSTER__PASSWORD=" + secret,
		"SLUICE_CLUSTER__NKEY_FILE=",
		"SLUICE_FEEDS__F__REPLICAS=2",
	})
	if err == nil || !strings.Contains(err.Error(), "cluster.nkey_file") || strings.Contains(err.Error(), secret) {
		t.Fatalf("an empty nkey_file from the environment: %v", err)
	}
	cfg, err = loadWithEnv(plain, []string{
		"SLUICE_CLUSTER__URL=nats://127.0.0.1:4222",
		"SLUICE_CLUSTER__NAME=fleet",
		"SLUICE_CLUSTER__USER=sluice",
		"SLUICE_CLUSTER__PASSWORD=" + secret,
		"SLUICE_CLUSTER__TLS__CA_FILE=ca.pem",
		"SLUICE_FEEDS__F__REPLICAS=2",
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Cluster
	if cl == nil || cl.Name != "fleet" || cl.Password != secret || cl.LeaseTTL != config.DefaultLeaseTTL ||
		cl.Timeout != config.DefaultClusterTimeout || cl.TLS.CAFile != filepath.Join(dir, "ca.pem") {
		t.Fatalf("cluster %+v", cl)
	}
	if cfg.Feeds["f"].Replicas != 2 {
		t.Errorf("replicas %d, want 2", cfg.Feeds["f"].Replicas)
	}
	if c := cl.Client(); c.User != "sluice" || c.Password != secret || c.TLS.CAFile != cl.TLS.CAFile {
		t.Errorf("client %+v", c)
	}
	if s := cfg.String(); strings.Contains(s, secret) || !strings.Contains(s, "name: fleet") {
		t.Errorf("rendered:\n%s", s)
	}
	if !slices.Contains(cfg.SecretValues(), secret) {
		t.Errorf("SecretValues %q misses the cluster password", cfg.SecretValues())
	}
	if cfg.Redacted().Cluster.Password == secret || cl.Password != secret {
		t.Error("Redacted must mask a copy's password, not the config's")
	}

	_, err = loadWithEnv(plain, []string{"SLUICE_CLUSTER__URL=nats://127.0.0.1:4222", "SLUICE_CLUSTER__LEASE_TTL=100ms"})
	if err == nil || !strings.Contains(err.Error(), "cluster.name: missing required key") ||
		!strings.Contains(err.Error(), "cluster.lease_ttl: must be at least 1s") {
		t.Errorf("bad cluster from the environment: %v", err)
	}
	if config.DefaultCluster().LeaseTTL != 10*time.Second {
		t.Error("the documented default lease_ttl is 10s")
	}
}
