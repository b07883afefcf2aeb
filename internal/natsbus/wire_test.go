package natsbus

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUniqueHeader(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"exchange", "market", "symbol", "trade_id"}, "exchange,market,symbol,trade_id"},
		{[]string{"a,b", "100%", "x\ny"}, "a%2Cb,100%25,x%0Ay"},
		{nil, ""},
	}
	for _, tt := range tests {
		got := FormatUnique(tt.names)
		if got != tt.want {
			t.Errorf("FormatUnique(%q) = %q, want %q", tt.names, got, tt.want)
		}
		back, err := ParseUnique(got)
		if err != nil || !slices.Equal(back, tt.names) {
			t.Errorf("ParseUnique(%q) = %q, %v", got, back, err)
		}
	}
	for _, bad := range []string{"a,,b", "a%2", "a%zz"} {
		if _, err := ParseUnique(bad); err == nil {
			t.Errorf("ParseUnique(%q) accepted", bad)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("a.b%c:d,e")
	f.Add("\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		keep := func(c byte) bool { return c > ' ' && c < 0x7f && c != '.' }
		e := Escape(s, keep)
		for i := 0; i < len(e); i++ {
			if e[i] != '%' && !keep(e[i]) {
				t.Fatalf("Escape(%q) = %q keeps %q", s, e, e[i])
			}
		}
		back, err := Unescape(e)
		if err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
	})
}

func TestTimeHeader(t *testing.T) {
	at := time.Unix(1740830400, 123456789)
	got, err := ParseTime(FormatTime(at))
	if err != nil || !got.Equal(at) {
		t.Fatalf("%v, %v", got, err)
	}
	if _, err := ParseTime("soon"); err == nil {
		t.Fatal("accepted")
	}
}

func TestClientValidate(t *testing.T) {
	ok := Client{URL: "nats://a:4222,tls://b:4222"}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := ok.URLs(); len(got) != 2 {
		t.Fatal(got)
	}
	for _, tt := range []struct {
		c   Client
		key string
	}{
		{Client{URL: "http://a"}, "url"},
		{Client{URL: ""}, "url"},
		{Client{URL: "nats://a", Token: "t", User: "u"}, "token"},
		{Client{URL: "nats://a", Password: "p"}, "user"},
		{Client{URL: "nats://a", TLS: TLS{KeyFile: "k"}}, "tls.cert_file"},
	} {
		errs := tt.c.Validate()
		if len(errs) != 1 || errs[0].Key != tt.key {
			t.Errorf("%+v: %v, want one error at %s", tt.c, errs, tt.key)
		}
	}
	two := Client{URL: "nats://u:s3cret@a:1, nats://v:s3cret@b:2"}
	if r := two.Redacted(); strings.Contains(r, "s3cret") || strings.Count(r, "REDACTED") != 2 {
		t.Errorf("Redacted() = %q", r)
	}
	if msg := CheckURL("nats://u:s3cret@h:1,ftp://u:s3cret@h"); !strings.Contains(msg, "REDACTED") || strings.Contains(msg, "s3cret") {
		t.Errorf("CheckURL message %q", msg)
	}
}
