package jsonws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/sluicehq/sluice/plugins/sdk"
)

// Canaries: a key written inline in the URL, a token from the
// environment, a login key from a file. None may reach the log, an error
// or a feed_events point, even when the server echoes them back.
const (
	canaryInline = "CANARY-inline-41f"
	canaryEnv    = "CANARY-env-8a2"
	canaryFile   = "CANARY-file-c07"
)

func secretsConfig(t *testing.T, srv *wsServer) string {
	t.Setenv("JSONWS_TEST_CANARY", canaryEnv)
	keyFile := writeFile(t, "key", canaryFile+"\n")
	return `
url: "` + srv.wsURL("/ws?apikey="+canaryInline+"&symbol=ABC") + `"
headers: {Authorization: "Bearer ${env:JSONWS_TEST_CANARY}"}
on_open:
  - send: {op: auth, key: "${file:` + keyFile + `}"}
    expect: {path: status, equals: ok, fail: [{path: status, equals: denied}]}
` + tradeRules
}

// drainEvents returns the messages of the feed_events points recorded so far.
func (r *recorder) drainEvents() []string {
	var msgs []string
	for {
		select {
		case p := <-r.ch:
			if v, ok := p.Field("message"); ok {
				msgs = append(msgs, v.Str())
			}
		default:
			return msgs
		}
	}
}

func assertNoCanary(t *testing.T, what, text string) {
	t.Helper()
	for _, c := range []string{canaryInline, canaryEnv, canaryFile} {
		if strings.Contains(text, c) || strings.Contains(text, url.QueryEscape(c)) {
			t.Errorf("%s shows the secret %s:\n%s", what, c, text)
		}
	}
}

func TestServerEchoingSecretsIsScrubbed(t *testing.T) {
	for _, echo := range []string{"handshake", "login"} {
		t.Run(echo, func(t *testing.T) {
			srv := newWSServer(t, func(n int, c *websocket.Conn, r *http.Request) {
				_, login, _ := c.ReadMessage()
				// A refusal quoting the request, as some servers do.
				c.WriteMessage(websocket.TextMessage, []byte(`{"status":"denied","request":`+string(login)+`,"url":"`+r.URL.String()+`"}`))
				drain(c)
			})
			if echo == "handshake" {
				srv.refuse = func(n int, w http.ResponseWriter, r *http.Request) bool {
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprintf(w, "bad credentials for %s with %s", r.URL, r.Header.Get("Authorization"))
					return true
				}
			}
			r := start(t, secretsConfig(t, srv))
			err := r.result(t)
			var perm *sdk.PermanentError
			if !errors.As(err, &perm) {
				t.Fatalf("Run: %v, want a permanent error", err)
			}
			// Not vacuous: the server did echo, and the error says what
			// was refused.
			if !strings.Contains(err.Error(), "REDACTED") {
				t.Errorf("error %q should show where a secret was masked", err)
			}
			assertNoCanary(t, "the error", err.Error())
			assertNoCanary(t, "the log", r.logs.String())
			assertNoCanary(t, "feed_events", strings.Join(r.rec.drainEvents(), "\n"))
		})
	}
}

func TestConfigErrorsQuoteNoSecret(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unparsable URL", "url: 'ws://user:" + canaryInline + "/x@h/'\n", "url: is not a valid URL: a password or key in it must be percent-encoded"},
		{"unterminated reference", "url: 'ws://h/?k=" + canaryInline + "${env:JSONWS_X'\n", "url: reference at byte 27: ${ without a closing }"},
		{"bad reference", "url: ws://h\nheaders: {X-Key: '" + canaryInline + "${" + canaryInline + "}'}\n", "headers.X-Key: reference at byte 17: must be ${env:NAME} or ${file:PATH}"},
		{"secret file too large", "url: ws://h\nheaders: {X-Key: '${file:/dev/zero}'}\n", "headers.X-Key: /dev/zero is larger than 64 KiB, the limit for a secret file"},
		{"on_open reference", "url: ws://h\non_open: [{send: {k: '" + canaryInline + "${vault:x}'}}]\n", `on_open[0].send: reference at byte 17: unknown kind "vault"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := newSource(discardLogger())
			_, err := src.Configure(context.Background(), sdk.ConfigureRequest{Config: yamlJSON(t, c.doc+tradeRules)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			assertNoCanary(t, "the error", err.Error())
		})
	}
}
