package live

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice"
)

func TestRenderChannel(t *testing.T) {
	p := func(meas string, tags ...string) *sluice.Point {
		pt := &sluice.Point{Measurement: meas}
		for i := 0; i+1 < len(tags); i += 2 {
			pt.Tags = append(pt.Tags, sluice.Tag{Key: tags[i], Value: tags[i+1]})
		}
		return pt
	}
	for _, c := range []struct {
		tmpl string
		p    *sluice.Point
		want string
	}{
		{DefaultChannel, p("trades", "exchange", "binance", "market", "spot", "symbol", "BTCUSDT"), "trades:binance:spot:BTCUSDT"},
		{DefaultChannel, p("synth", "symbol", "AAA"), "synth:_:_:AAA"},
		{DefaultChannel, p("x", "exchange", "", "market", "_", "symbol", "a:b*c d"), "x:_:%5F:a%3Ab%2Ac%20d"},
		{DefaultChannel, p("trades", "exchange", "binance", "market", "coinm", "symbol", "BTCUSD_PERP"), "trades:binance:coinm:BTCUSD_PERP"},
		{"book/{symbol}/{side}", p("book", "symbol", "ETH.USDT", "side", "bid"), "book/ETH.USDT/bid"},
		{"all", p("trades"), "all"},
		{"{measurement}", p("naïve"), "na%C3%AFve"},
	} {
		tm, err := parseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		got, err := tm.render(nil, c.p)
		if err != nil || string(got) != c.want {
			t.Errorf("%q over %+v = %q, %v; want %q", c.tmpl, c.p, got, err, c.want)
		}
	}
	tm, _ := parseTemplate(DefaultChannel)
	if _, err := tm.render(nil, p("trades", "symbol", strings.Repeat("x", 300))); err == nil {
		t.Error("a channel over 255 bytes rendered")
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"":                 "must not be empty",
		"{measurement":     "without its '}'",
		"a}b":              "without its '{'",
		"{}":               "must name the measurement or a tag",
		"{a b}":            "must name the measurement or a tag",
		"{measurement}{x}": "need a separator",
		"trades:*":         `"*" may not appear`,
		"a b:{symbol}":     `" " may not appear`,
		"100%:{symbol}":    `"%" may not appear`,
		"x\n{symbol}":      "may not appear",
	} {
		_, err := parseTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", tmpl, err, want)
		}
	}
}

func TestRouter(t *testing.T) {
	r, errs := newRouter(DefaultChannel, []string{"book = {measurement}:{symbol}:{side}", "ticker={symbol}"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if r.template("book").raw != "{measurement}:{symbol}:{side}" || r.template("ticker").raw != "{symbol}" || r.template("trades").raw != DefaultChannel {
		t.Error("wrong templates")
	}
	_, errs = newRouter("x{", []string{"nope", "=x", "a=x", "a=y", "b={"})
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{"channel: ", "channels[0]: must be measurement=template", "channels[1]: must be", "channels[3]: measurement \"a\" has a template already", "channels[4]: "} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// A rendered channel never holds '*' (patterns cannot be smuggled in),
// stays within the bound, and two points differing in one tag value get
// two channels.
func FuzzRenderChannel(f *testing.F) {
	f.Add("trades", "binance", "spot", "BTCUSDT")
	f.Add("x", "", "_", "a:b*c")
	f.Add("%41", "A", "%", "*")
	tm, _ := parseTemplate(DefaultChannel)
	f.Fuzz(func(t *testing.T, meas, exchange, market, symbol string) {
		pt := &sluice.Point{Measurement: meas, Tags: []sluice.Tag{{Key: "exchange", Value: exchange}, {Key: "market", Value: market}, {Key: "symbol", Value: symbol}}}
		got, err := tm.render(nil, pt)
		if err != nil {
			if len(meas)+len(exchange)+len(market)+len(symbol)+3 <= MaxChannel/3 {
				t.Fatalf("a short point failed: %v", err)
			}
			return
		}
		if strings.ContainsAny(string(got), "* \t\n") || len(got) > MaxChannel {
			t.Fatalf("channel %q", got)
		}
		if strings.Count(string(got), ":") != 3 {
			t.Fatalf("a value added a separator: %q", got)
		}
		other := *pt
		other.Tags = []sluice.Tag{{Key: "exchange", Value: exchange}, {Key: "market", Value: market}, {Key: "symbol", Value: symbol + "x"}}
		if o, err := tm.render(nil, &other); err == nil && string(o) == string(got) {
			t.Fatalf("two symbols, one channel %q", got)
		}
	})
}
