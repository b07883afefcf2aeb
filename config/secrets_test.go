package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/capread"
)

// canary is a secret sent through every config path below; no message and
// no rendering may contain it.
const canary = "CANARY-7d1f0b"

func TestSecretsNeverInMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
sinks:
  a: {type: influxdb, bucket: b, url: "ftp://admin:`+canary+`@h/?token=`+canary+`"}
  b: {type: influxdb, bucket: b, url: "http://h:8086/?apikey=`+canary+`", token_file: /dev/zero}
`)
	_, err := loadWithEnv(main, []string{
		// Values from the environment are never quoted, whatever the key.
		"SLUICE_HTTP__LISTEN=" + canary,
		"SLUICE_PIPELINE__BATCH_SIZE=" + canary,
		"SLUICE_SINKS__C__TYPE=" + canary,
		"SLUICE_LOG=" + canary,
		"SLUICE_SINKS__D__URL=" + canary,
		"SLUICE_SINKS__D__TYPE=influxdb",
		"SLUICE_SINKS__D__BUCKET=b",
		"SLUICE_SINKS__E__TYPE=sqlite",
		"SLUICE_SINKS__E__TOKEN=" + canary,
	})
	if err == nil {
		t.Fatal("loaded")
	}
	msg := err.Error()
	if strings.Contains(msg, canary) {
		t.Errorf("an error shows the secret:\n%s", msg)
	}
	for _, want := range []string{
		main + `: sinks.a.url: must be an http:// or https:// URL, got "ftp://admin:REDACTED@h/?token=REDACTED"`,
		main + ": sinks.b.token_file: cannot read token file: /dev/zero is larger than 64 KiB, the limit for a token file",
		"env SLUICE_HTTP__LISTEN: http.listen: must be host:port such as \"127.0.0.1:9273\", got a string",
		"env SLUICE_PIPELINE__BATCH_SIZE: pipeline.batch_size: must be a positive integer, got a string",
		"env SLUICE_SINKS__C__TYPE: sinks.c.type: must be a known sink type (influxdb, live, nats, sqlite), got a string",
		"env SLUICE_LOG: log: must be a mapping, got a string",
		"env SLUICE_SINKS__D__URL: sinks.d.url: must be an http:// or https:// URL, got a string",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestConfigFilesAreCapped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := "# " + strings.Repeat("x", config.MaxFileBytes) + "\n"
	main := writeFile(t, dir, "sluice.yaml", big)
	_, err := loadWithEnv(main, nil)
	var tl *capread.TooLargeError
	if want := main + ": larger than 4 MiB, the limit for a config file"; err == nil || err.Error() != want || !errors.As(err, &tl) {
		t.Errorf("main file: %v, want %s", err, want)
	}

	main = writeFile(t, dir, "ok.yaml", "feeds_dir: d\n")
	drop := writeFile(t, dir, "d/big.yaml", big)
	_, err = loadWithEnv(main, nil)
	if want := drop + ": larger than 4 MiB, the limit for a config file"; err == nil || err.Error() != want {
		t.Errorf("feed file: %v, want %s", err, want)
	}
	// The limit is a limit, not a guess: a file just within it loads.
	head := "feeds_dir: \"\"\n#"
	within := head + strings.Repeat("x", config.MaxFileBytes-len(head)-1) + "\n"
	if _, err := loadWithEnv(writeFile(t, dir, "within.yaml", within), nil); err != nil || len(within) != config.MaxFileBytes {
		t.Errorf("a file of %d bytes: %v", len(within), err)
	}
}

func TestTokenFileIsCapped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(strings.Repeat("t", config.MaxTokenFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	main := writeFile(t, dir, "sluice.yaml", "feeds_dir: \"\"\nsinks:\n  x: {type: influxdb, url: \"http://h\", bucket: b, token_file: token}\n")
	_, err := loadWithEnv(main, nil)
	if want := main + ": sinks.x.token_file: cannot read token file: " + tok + " is larger than 64 KiB, the limit for a token file"; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestFeedEnvNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
sinks: {db: {type: sqlite}}
feeds:
  ws:
    plugin: jsonws
    sinks: [db]
    config:
      url: "wss://h/?key=${env:WS_KEY}"
      headers: {Authorization: "Bearer ${env:WS_TOKEN}", X-Lit: "$${env:NOT_A_REF}"}
      on_open: [{send: {op: login, key: "${env:WS_KEY}", pw: "${file:/run/pw}"}}]
`)
	cfg, err := loadWithEnv(main, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Feeds["ws"].EnvNames(), []string{"WS_KEY", "WS_TOKEN"}; !slices.Equal(got, want) {
		t.Errorf("EnvNames = %v, want %v", got, want)
	}

	bad := writeFile(t, dir, "d/steal.yaml", `feeds:
  steal: {plugin: jsonws, sinks: [db], config: {headers: {X: "${env:SLUICE_SINKS__INFLUX__TOKEN}"}}}
`)
	main = writeFile(t, dir, "two.yaml", "feeds_dir: d\nsinks: {db: {type: sqlite}}\n")
	_, err = loadWithEnv(main, nil)
	want := bad + ": feeds.steal.config.headers.X: ${env:SLUICE_SINKS__INFLUX__TOKEN} names one of the agent's own SLUICE_* variables, which no plugin gets: use a variable of another name"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSecretValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "tok", "from-file-token\n")
	main := writeFile(t, dir, "sluice.yaml", `feeds_dir: ""
sinks:
  a: {type: influxdb, bucket: b, url: "http://admin:url-password@h:8086", token_file: tok}
  b: {type: influxdb, bucket: b, url: "http://h:8086/?u=me&p=query-password"}
feeds:
  f:
    plugin: jsonws
    sinks: [a]
    config:
      url: "wss://h/?apikey=literal-apikey&symbol=BTCUSDT&sig=${env:SIG}"
      headers: {X-API-Key: header-key}
      login: {password: nested-password, user: someone}
      auth_mode: basic
      api_keys: [list-key-one, short]
`)
	cfg, err := loadWithEnv(main, []string{"SLUICE_SINKS__B__TOKEN=env-token"})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.SecretValues()
	slices.Sort(got)
	// Not "someone" (a user name), "basic" or "short" (too short to be
	// taken as secret for its key's name alone).
	want := []string{"env-token", "from-file-token", "header-key", "list-key-one", "literal-apikey", "nested-password", "query-password", "url-password"}
	if !slices.Equal(got, want) {
		t.Errorf("SecretValues = %v\nwant %v", got, want)
	}
	if s := cfg.String(); strings.Contains(s, "literal-apikey") || strings.Contains(s, "url-password") || strings.Contains(s, "query-password") {
		t.Errorf("String shows a secret:\n%s", s)
	}
}
