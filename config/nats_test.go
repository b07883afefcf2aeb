package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sinks/nats"
)

// A nats sink's password from the environment reaches the sink, and
// neither the rendered config nor an error shows it; the agent scrubs it.
func TestNATSSecretFromEnv(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "sluice.yaml", `feeds_dir: ""
sinks:
  bus: {type: nats, url: "nats://n1:4222,nats://sluice:`+secret+`@n2:4222", stream: SLUICE, user: sluice}
`)
	cfg, err := loadWithEnv(path, []string{"SLUICE_SINKS__BUS__PASSWORD=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := cfg.Sinks["bus"].Options.(*nats.Config)
	if nc == nil || nc.Password != secret || nc.User != "sluice" || len(nc.URLs()) != 2 {
		t.Fatalf("nats config %+v", nc)
	}
	if s := cfg.String(); strings.Contains(s, secret) {
		t.Errorf("String shows the password:\n%s", s)
	}
	if !slices.Contains(cfg.SecretValues(), secret) {
		t.Errorf("SecretValues %q misses the password", cfg.SecretValues())
	}
	_, err = loadWithEnv(path, []string{"SLUICE_SINKS__BUS__PASSWORD=" + secret, "SLUICE_SINKS__BUS__TOKEN=" + secret})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "sinks.bus.token: set only one of") {
		t.Errorf("two ways to authenticate: %v", err)
	}
}
