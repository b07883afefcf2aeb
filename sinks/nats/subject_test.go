package nats

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

func point(m string, tags ...string) *sluice.Point {
	p := &sluice.Point{Measurement: m, Fields: []sluice.Field{{Key: "f", Value: sluice.Int(1)}}, Time: time.Unix(1, 0)}
	for i := 0; i < len(tags); i += 2 {
		p.Tags = append(p.Tags, sluice.Tag{Key: tags[i], Value: tags[i+1]})
	}
	p.SortTags()
	return p
}

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		tmpl string
		p    *sluice.Point
		want string
	}{
		{DefaultSubject, point("trades", "exchange", "binance", "market", "spot", "symbol", "BTCUSDT", "side", "buy"), "sluice.trades.binance.spot.BTCUSDT"},
		{DefaultSubject, point("feed_events", "feed", "btc", "symbol", "BTCUSDT"), "sluice.feed_events._._.BTCUSDT"},
		{DefaultSubject, point("m", "exchange", "", "market", "_", "symbol", "a.b*c>d e"), "sluice.m._.%5F.a%2Eb%2Ac%3Ed%20e"},
		{DefaultSubject, point("agg_trades", "symbol", "BTC-USD_PERP"), "sluice.agg_trades._._.BTC-USD_PERP"},
		{DefaultSubject, point("m", "symbol", "100%"), "sluice.m._._.100%25"},
		{DefaultSubject, point("m", "symbol", "Zürich"), "sluice.m._._.Z%C3%BCrich"},
		{"a.b", point("m"), "a.b"},
		{"md.{symbol}.{measurement}", point("t", "symbol", "X"), "md.X.t"},
	}
	for _, tt := range tests {
		tmpl, err := parseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tt.tmpl, err)
		}
		got, err := tmpl.render(tt.p)
		if err != nil {
			t.Fatalf("%q: %v", tt.tmpl, err)
		}
		if got != tt.want {
			t.Errorf("%q on %+v: got %q, want %q", tt.tmpl, tt.p.Tags, got, tt.want)
		}
		if !covers(tmpl.wildcard(), got) {
			t.Errorf("%q: %q is outside the template's wildcard %q", tt.tmpl, got, tmpl.wildcard())
		}
	}
}

func TestTemplateRenderTooLong(t *testing.T) {
	tmpl, _ := parseTemplate(DefaultSubject)
	if _, err := tmpl.render(point("m", "symbol", strings.Repeat("x", 2000))); err == nil {
		t.Fatal("a 2000-byte subject was accepted")
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, bad := range []string{"", "{measurement}.x", "a..b", "a.", ".a", "a.b*", "a.>", "a.{}", "a.x{symbol}", "a.{sym}bol", "a b.c", "$JS.{measurement}", "a.{a{b}}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestStreamSubject(t *testing.T) {
	for tmpl, want := range map[string]string{
		DefaultSubject:               "sluice.>",
		"md.binance.{symbol}":        "md.binance.>",
		"fixed.subject":              "fixed.subject",
		"a.{measurement}.b.{symbol}": "a.>",
	} {
		tp, err := parseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.streamSubject(); got != want {
			t.Errorf("%q: %q, want %q", tmpl, got, want)
		}
		if !covers(tp.streamSubject(), tp.wildcard()) {
			t.Errorf("%q: stream subject %q does not hold %q", tmpl, tp.streamSubject(), tp.wildcard())
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"sluice.>", "sluice.*.*.*.*", true},
		{">", "sluice.*", true},
		{"sluice.*.*.*.*", "sluice.*.*.*.*", true},
		{"sluice.*.*.*", "sluice.*.*.*.*", false},
		{"sluice.trades.>", "sluice.*.*.*.*", false},
		{"other.>", "sluice.*.*", false},
		{"sluice.*.>", "sluice.*", false}, // '>' needs a token
		{"sluice.*", "sluice.>", false},
		{"sluice.>", "sluice.>", true},
		{"sluice.x", "sluice.x", true},
		{"sluice.x", "sluice.*", false},
		{"*.*", "a.b", true},
	}
	for _, tt := range tests {
		if got := covers(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}

// FuzzRender: any tag value renders to one valid token that escaping
// keeps apart from every other value.
func FuzzRender(f *testing.F) {
	f.Add("BTCUSDT", "ETHUSDT")
	f.Add("a.b", "a%2Eb")
	f.Add("", "_")
	f.Add("*", ">")
	f.Fuzz(func(t *testing.T, a, b string) {
		tmpl, _ := parseTemplate("x.{symbol}")
		sa, erra := tmpl.render(point("m", "symbol", a))
		sb, errb := tmpl.render(point("m", "symbol", b))
		if erra != nil || errb != nil {
			return // too long
		}
		tok := strings.TrimPrefix(sa, "x.")
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") || strings.IndexFunc(tok, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
			t.Fatalf("%q rendered as %q", a, sa)
		}
		if a != b && sa == sb {
			t.Fatalf("%q and %q both render as %q", a, b, sa)
		}
	})
}
