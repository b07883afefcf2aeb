package jsonws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

const minimalRules = `rules: [{measurement: m, fields: {x: x}}]`

func configure(t *testing.T, doc string, validateOnly bool) (*Source, error) {
	t.Helper()
	src := newSource(discardLogger())
	_, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", Config: yamlJSON(t, doc), ValidateOnly: validateOnly})
	return src, err
}

func TestConfigureRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name, doc string
		want      string // the joined errors
	}{
		{"empty", `{}`, "url: is required (ws:// or wss://); rules: must list at least one rule, or the feed writes nothing"},
		{"scheme", "url: http://x\n" + minimalRules, `url: scheme must be ws or wss, not "http"`},
		{"no host", "url: ws://\n" + minimalRules, "url: has no host"},
		{"unknown key", "url: ws://x\nurll: 1\n" + minimalRules, "urll: unknown key"},
		{"bad ref", "url: ws://x/${bogus}\n" + minimalRules, "url: reference at byte 7: must be ${env:NAME} or ${file:PATH} (write $$ for a literal $)"},
		{"header name", "url: ws://x\nheaders: {'Bad Name': v}\n" + minimalRules, "headers.Bad Name: is not a valid header name"},
		{"reserved header", "url: ws://x\nheaders: {Sec-WebSocket-Key: v}\n" + minimalRules, "headers.Sec-WebSocket-Key: is set by the WebSocket handshake itself and cannot be overridden"},
		{"tls on ws", "url: ws://x\ntls: {insecure_skip_verify: true}\n" + minimalRules, "tls: applies only to wss:// URLs"},
		{"tls files", "url: wss://x\ntls: {ca_file: " + bad + ", cert_file: /nonexistent}\n" + minimalRules,
			"tls.ca_file: holds no PEM certificate; tls.key_file: missing: cert_file is set"},
		{"proxy", "url: ws://x\nproxy: ftp://p\n" + minimalRules, `proxy: must be "environment" or a http://, https:// or socks5:// URL`},
		{"sizes", "url: ws://x\nmax_message_bytes: -1\nmax_decompressed_bytes: -1\ndecompress: brotli\n" + minimalRules,
			`max_message_bytes: must be positive; decompress: must be none, gzip, deflate or auto, not "brotli"; max_decompressed_bytes: must be positive`},
		{"depth zero is the default, negative is not", "url: ws://x\nmax_json_depth: -1\n" + minimalRules, "max_json_depth: must be between 1 and 10000, got -1"},
		{"depth past what the stack allows", "url: ws://x\nmax_json_depth: 10001\n" + minimalRules, "max_json_depth: must be between 1 and 10000, got 10001"},
		{"on_open", "url: ws://x\non_open: [{}, {send: hi, expect: {path: a, timeout: -1s}}, {send: {a: 1}, expect: {path: a, equals: 1, fail: [{path: ''}]}}]\n" + minimalRules,
			"on_open[0].send: is required: a string sent as text, or a JSON value; on_open[1].expect: set exactly one of equals, exists, regex and in; on_open[1].expect.timeout: must be positive; on_open[2].expect.fail[0]: path is required"},
		{"ping", "url: ws://x\nping: {interval: -1s, timeout: -1s}\n" + minimalRules, "ping.interval: must not be negative (0s turns pings off); ping.timeout: must be positive"},
		{"heartbeat", "url: ws://x\nheartbeat: {every: 0s}\n" + minimalRules, "heartbeat.every: must be positive; heartbeat.send: is required: a string sent as text, or a JSON value"},
		{"answer", "url: ws://x\nanswer: [{reply: pong}, {text: ping, match: [{path: op, equals: ping}], reply: pong}, {text: ping}]\n" + minimalRules,
			"answer[0]: set exactly one of text (a plain text message) and match (conditions on a JSON message); answer[1]: set exactly one of text (a plain text message) and match (conditions on a JSON message); answer[2].reply: is required: a string sent as text, or a JSON value"},
		{"durations", "url: ws://x\nstale_after: -1s\nqueue_wait: 6s\nreconnect: {initial: 2s, max: 1s, budget: -2}\n" + minimalRules,
			"stale_after: must not be negative (0s turns the check off); queue_wait: must be between 0s and 5s, got 6s; reconnect.max: must be at least reconnect.initial; reconnect.budget: must be positive, or -1 for no limit"},
		{"duration syntax", "url: ws://x\nstale_after: soon\n" + minimalRules, `stale_after: must be a duration like "500ms" or "5m", got "soon"`},
		// Every value that does not decode is named, with the problems
		// found checking the rest.
		{"decode errors all at once", "url: ws://x\nstale_after: soon\nmax_json_depth: deep\nreconnect: {initial: later}\nrules: [{measurement: m, fields: {x: x}, unique: u}]\nheartbeat: {every: 0s}",
			`max_json_depth: must be an integer, got a string; reconnect.initial: must be a duration like "500ms" or "5m", got "later"; ` +
				`rules[0].unique: must be a list, got a string; stale_after: must be a duration like "500ms" or "5m", got "soon"; ` +
				"heartbeat.every: must be positive; heartbeat.send: is required: a string sent as text, or a JSON value"},
		{"rules", "url: ws://x\nrules: [{measurement: m}]", "rules[0].fields: must name at least one field: a point without fields cannot be stored"},
		{"only alive rules", "url: ws://x\nrules: [{alive: true, match: [{path: type, equals: hb}]}]",
			"rules: must list at least one rule that maps points, not only alive rules, or the feed writes nothing"},
		{"alive rule that maps", "url: ws://x\nrules: [{name: hb, alive: true, measurement: m, fields: {x: x}}, {measurement: t, fields: {p: p}}]",
			"rules[0].fields: an alive rule maps nothing: it only marks the messages it matches as proof the feed is alive; drop fields (or alive); " +
				"rules[0].match: an alive rule needs conditions: without them every message would prove the feed alive; " +
				"rules[0].measurement: an alive rule maps nothing: it only marks the messages it matches as proof the feed is alive; drop measurement (or alive)"},
		{"missing env", "url: ws://x\nheaders: {Authorization: 'Bearer ${env:JSONWS_TEST_UNSET_VARIABLE}'}\n" + minimalRules,
			"headers.Authorization: environment variable JSONWS_TEST_UNSET_VARIABLE is not set"},
		{"missing file", "url: ws://x\non_open: [{send: {key: '${file:/nonexistent/key}'}}]\n" + minimalRules,
			"on_open[0].send: cannot read /nonexistent/key: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, validateOnly := range []bool{true, false} {
				_, err := configure(t, tc.doc, validateOnly)
				var ces sdk.ConfigErrors
				if !errors.As(err, &ces) {
					t.Fatalf("got %v, want ConfigErrors", err)
				}
				if got := err.Error(); !strings.Contains(got, tc.want) {
					t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
				}
			}
		})
	}
}

func TestConfigureValidateOnlyChangesNothing(t *testing.T) {
	doc := "url: ws://x\n" + minimalRules
	src, err := configure(t, doc, true)
	if err != nil {
		t.Fatal(err)
	}
	if src.set != nil {
		t.Fatal("ValidateOnly kept the config")
	}
	if err := src.run(context.Background(), &recorder{}); err == nil || !strings.Contains(err.Error(), "Run before Configure") {
		t.Fatalf("run after a validation: %v", err)
	}
}

// stale_after defaults to a minute; 0s turns the check off.
func TestStaleAfterDefault(t *testing.T) {
	for doc, want := range map[string]time.Duration{
		"url: ws://x\n" + minimalRules:                  DefaultStaleAfter,
		"url: ws://x\nstale_after: 0s\n" + minimalRules: 0,
		"url: ws://x\nstale_after: 5s\n" + minimalRules: 5 * time.Second,
	} {
		src, err := configure(t, doc, false)
		if err != nil {
			t.Fatal(err)
		}
		if src.set.staleAfter != want {
			t.Errorf("%q: stale_after %v, want %v", doc, src.set.staleAfter, want)
		}
	}
	if DefaultStaleAfter != time.Minute {
		t.Errorf("DefaultStaleAfter = %v; the README says a minute", DefaultStaleAfter)
	}
}

func TestConfigureDeclaresMeasurements(t *testing.T) {
	src := newSource(discardLogger())
	ms, err := src.Configure(context.Background(), sdk.ConfigureRequest{Feed: "f", Config: yamlJSON(t, `
url: ws://x
rules:
  - {measurement: trades, fields: {id: id}, unique: [id]}
  - {measurement_path: kind, fields: {x: x}}
`)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(ms)
	// feed_events is the agent's to declare: it writes the events.
	if want := `[{"Name":"trades","Unique":["id"]}]`; string(got) != want {
		t.Errorf("measurements %s, want %s", got, want)
	}
	if src.set == nil || src.feed != "f" {
		t.Error("Configure did not keep the config")
	}
}

func TestTemplates(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("  s3cr\"et\n"), 0o600)
	t.Setenv("JSONWS_TEST_TOKEN", "tok")
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"Bearer ${env:JSONWS_TEST_TOKEN}", "Bearer tok"},
		{"${file:" + keyFile + "}!", `s3cr"et!`},
		{"cost $5 and $$10 and $", "cost $5 and $10 and $"},
	} {
		tp, err := parseTemplate(tc.in, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		got, err := tp.render()
		if err != nil || got != tc.want {
			t.Errorf("render(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"${env:X", "${env:}", "${vault:x}", "${x}"} {
		if _, err := parseTemplate(bad, nil); err == nil {
			t.Errorf("parseTemplate(%q) accepted", bad)
		}
	}

	// A secret inside a JSON message is escaped as JSON; a text message
	// is sent as written.
	m, err := parseMessage(json.RawMessage(`{"op":"auth","args":["${file:`+keyFile+`}",1.50]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.render()
	if want := `{"args":["s3cr\"et",1.50],"op":"auth"}`; err != nil || string(b) != want {
		t.Errorf("JSON message = %s, %v; want %s", b, err, want)
	}
	m, _ = parseMessage(json.RawMessage(`"ping ${env:JSONWS_TEST_TOKEN}"`), nil)
	if b, _ := m.render(); string(b) != "ping tok" {
		t.Errorf("text message = %q", b)
	}
}

func TestFeedConfig(t *testing.T) {
	feedFile := `
feeds:
  a: {plugin: synth, config: {rate: 1}}
  b:
    plugin: jsonws
    config:
      url: ws://x
      rules: [{measurement: m, tags: {side: {path: m, map: {true: sell, false: buy}}}, fields: {x: x}}]
`
	got, err := FeedConfig([]byte(feedFile), "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rules":[{"fields":{"x":"x"},"measurement":"m","tags":{"side":{"map":{"false":"buy","true":"sell"},"path":"m"}}}],"url":"ws://x"}`
	if string(got) != want {
		t.Errorf("config\n%s\nwant\n%s", got, want)
	}
	if _, err := FeedConfig([]byte(feedFile), "zzz"); err == nil {
		t.Error("an unknown feed was accepted")
	}
	bare, err := FeedConfig([]byte("url: ws://x\nrules: []\n"), "")
	if err != nil || string(bare) != `{"rules":[],"url":"ws://x"}` {
		t.Errorf("bare config: %s, %v", bare, err)
	}
}

// The size and depth caps: defaults, and what each key changes. A
// compressed message may inflate to max_message_bytes unless
// max_decompressed_bytes says otherwise.
func TestFrameCaps(t *testing.T) {
	for _, tc := range []struct {
		doc                string
		message, inflated  int64
		depth, mapperDepth int
	}{
		{"", DefaultMaxMessageBytes, DefaultMaxMessageBytes, DefaultMaxJSONDepth, DefaultMaxJSONDepth},
		{"max_message_bytes: 4096\n", 4096, 4096, DefaultMaxJSONDepth, DefaultMaxJSONDepth},
		{"max_message_bytes: 4096\nmax_decompressed_bytes: 65536\n", 4096, 65536, DefaultMaxJSONDepth, DefaultMaxJSONDepth},
		{"max_decompressed_bytes: 1000\nmax_json_depth: 7\n", DefaultMaxMessageBytes, 1000, 7, 7},
	} {
		src, err := configure(t, "url: ws://x\n"+tc.doc+minimalRules, false)
		if err != nil {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		s := src.set
		if s.maxMessage != tc.message || s.maxDecompressed != tc.inflated || s.maxDepth != tc.depth || s.mapper.maxDepth != tc.mapperDepth {
			t.Errorf("%q: message %d, inflated %d, depth %d, mapper depth %d; want %d, %d, %d, %d", tc.doc,
				s.maxMessage, s.maxDecompressed, s.maxDepth, s.mapper.maxDepth, tc.message, tc.inflated, tc.depth, tc.mapperDepth)
		}
	}
}

// Configure reports every problem of a config at once, each at its full
// key with list indexes, in words: a value of the wrong kind does not hide
// the others, and no Go type names leak.
func TestConfigErrorsGolden(t *testing.T) {
	var b strings.Builder
	for _, doc := range []string{
		// A number where a path goes, in a match and in a field spec,
		// beside an unrelated bad duration and an unknown key.
		`url: wss://ws.kraken.com/v2
stale_after: 30
reconnect: {budget: many}
rules:
  - name: trade
    match: [{path: channel, equals: trade}, {path: 1, equals: update}]
    each: data
    measurement: trades
    tags: {symbol: symbol, sid: {path: 0, lookup: channels}}
    fields:
      price: {path: 5, type: float}
      qty: {path: [qty], type: float, optinal: true}
    time: {path: timestamp, format: 7}
    unique: [symbol]`,
		// The wrong kind for whole sections.
		`url: [ws://x]
headers: [a, b]
on_open: {send: x}
ping: 30s
rules: {measurement: m}`,
		// Kinds right, values wrong.
		`url: ws://x
on_open:
  - send: {op: subscribe}
    expect: {path: op, equals: subscribe, count: 0.5, timeout: soon}
answer:
  - match: [{path: op, equals: ping}]
    reply: {op: pong, ts: "${msg:ts"}
rules:
  - {measurement: m, fields: {x: {path: x, scale: abc, case: Title}}}`,
	} {
		_, err := configure(t, doc, true)
		fmt.Fprintf(&b, "> %s\n", strings.ReplaceAll(doc, "\n", "\n> "))
		var ces sdk.ConfigErrors
		if !errors.As(err, &ces) {
			t.Fatalf("got %v, want ConfigErrors", err)
		}
		for _, ce := range ces {
			if strings.Contains(ce.Msg, "Go struct") || strings.Contains(ce.Msg, "json:") {
				t.Errorf("Go internals in %q", ce.Error())
			}
			fmt.Fprintf(&b, "  %s\n", ce.Error())
		}
	}
	golden(t, "config_errors.txt", b.String())
}
