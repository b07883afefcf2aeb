package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

const canary = "CANARY-s3cr3t"

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8086":                              "http://127.0.0.1:8086",
		"http://admin:" + canary + "@127.0.0.1:8086/x":       "http://admin:REDACTED@127.0.0.1:8086/x",
		"https://" + canary + "@github.com/o/r.git":          "https://REDACTED@github.com/o/r.git",
		"wss://h/ws?apikey=" + canary + "&symbol=BTC":        "wss://h/ws?apikey=REDACTED&symbol=BTC",
		"wss://h/ws?symbol=BTC&api_key=" + canary:            "wss://h/ws?symbol=BTC&api_key=REDACTED",
		"wss://h/?X-Amz-Signature=" + canary + "&a=1":        "wss://h/?X-Amz-Signature=REDACTED&a=1",
		"wss://h/?access_token=" + canary + "&sig=" + canary: "wss://h/?access_token=REDACTED&sig=REDACTED",
		"http://h/?u=admin&p=" + canary:                      "http://h/?u=admin&p=REDACTED",
		"http://h/?key=" + canary + "&keepalive=30":          "http://h/?key=REDACTED&keepalive=30",
		"http://h/?Token=" + canary + "&auth=" + canary:      "http://h/?Token=REDACTED&auth=REDACTED",
		"http://h/?password=&token":                          "http://h/?password=&token",
		"https://h/cb#access_token=" + canary + "&x=1":       "https://h/cb#access_token=REDACTED&x=1",
		"ws://u:" + canary + "/x@h":                          "(unparsable URL)",
		"mailto:" + canary + "@example.com":                  "mailto:REDACTED",
	} {
		got := URL(in)
		if got != want {
			t.Errorf("URL(%q)\n got %q\nwant %q", in, got, want)
		}
		if strings.Contains(got, canary) {
			t.Errorf("URL(%q) = %q keeps the secret", in, got)
		}
	}
}

func TestSecretKey(t *testing.T) {
	for _, k := range []string{"apikey", "api_key", "API-Key", "apiKey", "key", "token", "access_token", "refresh_token",
		"secret", "client_secret", "password", "passwd", "pwd", "signature", "sig", "X-Amz-Signature", "auth",
		"Authorization", "credential", "X-Amz-Credential", "private_key", "p"} {
		if !SecretKey(k) {
			t.Errorf("SecretKey(%q) = false", k)
		}
	}
	for _, k := range []string{"symbol", "streams", "keepalive", "u", "user", "bucket", "org", "precision", "depth"} {
		if SecretKey(k) {
			t.Errorf("SecretKey(%q) = true", k)
		}
	}
}

func TestText(t *testing.T) {
	// What net/http's url.Error says, wrapped by a caller.
	in := `influxdb write: Post "http://admin:` + canary + `@127.0.0.1:1/api/v2/write?bucket=b&token=` + canary + `": dial tcp 127.0.0.1:1: connect: connection refused`
	want := `influxdb write: Post "http://admin:REDACTED@127.0.0.1:1/api/v2/write?bucket=b&token=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused`
	if got := Text(in); got != want {
		t.Errorf("Text:\n got %s\nwant %s", got, want)
	}
	if got := Text("see http://h/x?key=" + canary + "."); got != "see http://h/x?key=REDACTED." {
		t.Errorf("trailing period: %q", got)
	}
	// A URL with nothing to mask stays exactly as written.
	for _, keep := range []string{"is required (ws:// or wss://)", "dial http://h:80/a%2Fb?x=1 failed"} {
		if got := Text(keep); got != keep {
			t.Errorf("Text(%q) = %q", keep, got)
		}
	}
	if got := Text("no url here"); got != "no url here" {
		t.Errorf("plain text changed: %q", got)
	}
}

func TestScrubber(t *testing.T) {
	s := NewScrubber()
	s.Add(canary, "a+b/c\"d", "ab") // the last is too short to scrub
	for in, want := range map[string]string{
		"server said: bad key " + canary:              "server said: bad key REDACTED",
		`{"key":"a+b/c\"d"}`:                          `{"key":"REDACTED"}`,
		"q=" + url.QueryEscape("a+b/c\"d") + "&x=ab":  "q=REDACTED&x=ab",
		"GET ws://h/?sig=" + canary + "x and more ab": "GET ws://h/?sig=REDACTED and more ab",
	} {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}

	base := fmt.Errorf("dial: %w", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist})
	err := s.Error(fmt.Errorf("login %s refused: %w", canary, base))
	if strings.Contains(err.Error(), canary) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Error: %q, unwraps to ErrNotExist: %v", err, errors.Is(err, fs.ErrNotExist))
	}
	if s.Error(nil) != nil || Error(nil) != nil {
		t.Error("a nil error must stay nil")
	}
	if e := errors.New("plain"); s.Error(e) != e {
		t.Error("an error with nothing to scrub should come back as it is")
	}
}

type stringer struct{}

func (stringer) String() string { return "token " + canary }

func TestHandler(t *testing.T) {
	s := NewScrubber()
	s.Add(canary)
	var out bytes.Buffer
	log := slog.New(s.Handler(slog.NewJSONHandler(&out, nil))).With("with", canary)
	log.Info("msg "+canary,
		"str", canary,
		"err", errors.New("e "+canary),
		"stringer", stringer{},
		"url", "http://u:pw@h/?apikey=zz",
		"json", map[string]any{"a": []any{canary, 1.0}},
		slog.Group("g", "inner", canary),
		"n", 3)
	got := out.String()
	if strings.Contains(got, canary) || strings.Contains(got, "pw@") || strings.Contains(got, "apikey=zz") {
		t.Errorf("log line keeps a secret:\n%s", got)
	}
	if !strings.Contains(got, `"n":3`) || strings.Count(got, Mark) < 8 {
		t.Errorf("log line lost its shape:\n%s", got)
	}
}

// URL never returns a secret parameter's value or a user-info password.
func FuzzURL(f *testing.F) {
	for _, s := range []string{"http://u:p@h/?token=t", "wss://h/?a=1&apikey=k#sig=s", "x://", "://", "http://[::1]:80/?key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := URL(raw)
		u, err := url.Parse(got)
		if err != nil {
			if got != "(unparsable URL)" {
				t.Fatalf("URL(%q) = %q does not parse: %v", raw, got, err)
			}
			return
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != Mark {
				t.Fatalf("URL(%q) = %q keeps a password", raw, got)
			}
		}
		for k, vs := range u.Query() {
			for _, v := range vs {
				if SecretKey(k) && v != "" && v != Mark {
					t.Fatalf("URL(%q) = %q keeps %s=%s", raw, got, k, v)
				}
			}
		}
	})
}
