package binance

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/sluicehq/sluice/plugins/sdk"
)

// Config is a Binance feed's `config:` block, as the user writes it.
// Optional fields are pointers where the zero value is meaningful and must
// be told apart from "not set".
type Config struct {
	// Market is spot, usdm (USD-M futures) or coinm (COIN-M futures).
	// Default spot.
	Market string `json:"market"`
	// Testnet points the default URLs at Binance's test network.
	Testnet bool `json:"testnet"`
	// Symbols as Binance lists them: BTCUSDT, BTCUSD_PERP.
	Symbols []string `json:"symbols"`
	// Streams are stream kinds in Binance's spelling (trade, aggTrade,
	// kline_1m, depth@100ms, ...), each subscribed for every symbol.
	Streams []string `json:"streams"`
	// WSURL and RESTURL override the base URLs (scheme and host, and a
	// path prefix if any), e.g. to point at a simulated exchange.
	WSURL   string `json:"ws_url"`
	RESTURL string `json:"rest_url"`
	// BookInterval is how often the local books of `depth` streams are
	// emitted. Default 1s.
	BookInterval *sdk.Duration `json:"book_interval"`
	// BookDepth is the number of levels per side emitted. Default 20.
	BookDepth *int `json:"book_depth"`
	// StaleAfter overrides, per configured stream kind, how long a stream
	// may stay silent before its connection is replaced ("0s": never).
	StaleAfter map[string]sdk.Duration `json:"stale_after"`
	// MaxBackfill bounds the REST backfill of one trade gap.
	MaxBackfill *MaxBackfill `json:"max_backfill"`
	// RESTWeightLimit is the REST request weight per minute this feed
	// stays under (the exchange counts per IP). Default: half of
	// Binance's limit, 3000 on spot and 1200 on futures.
	RESTWeightLimit *int `json:"rest_weight_limit"`
	// RotateAfter is the age at which a connection is replaced, before
	// Binance closes it at 24h. Default 23h50m.
	RotateAfter *sdk.Duration `json:"rotate_after"`
	// StreamsPerConnection is the most streams one connection carries.
	// Default and maximum 1024, Binance's limit.
	StreamsPerConnection *int `json:"streams_per_connection"`
	// QueueWait is how long a live point may wait for room in the host's
	// queue before it is dropped (trades and aggTrades are then
	// backfilled over REST). Meanwhile the connection's frames wait in
	// the socket. Default 1s; "0s" never waits.
	QueueWait *sdk.Duration `json:"queue_wait"`
	// APIKey is sent (as X-MBX-APIKEY) with historicalTrades requests
	// only, which futures require for trade backfill. Optional.
	APIKey string `json:"api_key"`
}

// MaxBackfill bounds a backfill by ids and by age.
type MaxBackfill struct {
	// Count is the most ids fetched for one gap of one stream; older ids
	// of a longer gap are given up and reported. 0 turns backfill off.
	// Default 100000.
	Count *int64 `json:"count"`
	// Age gives up ids older than this. "0s" means no age bound. Default
	// 24h.
	Age *sdk.Duration `json:"age"`
}

// Defaults and bounds of the config.
const (
	DefaultBookInterval  = time.Second
	DefaultBookDepth     = 20
	MaxBookDepth         = 1000 // the deepest snapshot every market serves
	DefaultBackfillCount = 100_000
	DefaultBackfillAge   = 24 * time.Hour
	DefaultRotateAfter   = 23*time.Hour + 50*time.Minute
	MaxStreamsPerConn    = 1024
	DefaultQueueWait     = time.Second
	// maxQueueWait keeps a stalled runner well inside Binance's minute
	// for answering a ping: the connection's reader waits with it.
	maxQueueWait    = 10 * time.Second
	minBookInterval = 100 * time.Millisecond
	minRotateAfter  = time.Second
	maxLifetime     = 24 * time.Hour
)

// kindClass is what a stream kind carries, which decides how the runner
// treats its frames.
type kindClass uint8

const (
	classTrade kindClass = iota + 1
	classAggTrade
	classKline
	classBookTicker
	classTicker
	classMiniTicker
	classDepth   // diff depth: a local book
	classPartial // depth5/10/20
	classMarkPrice
	classForceOrder
)

// streamKind is one configured stream kind.
type streamKind struct {
	// Name is the kind as configured and as it follows "<symbol>@" in
	// the stream name: "trade", "kline_1m", "depth@100ms".
	Name  string
	class kindClass
}

// defaultStale is how long a stream of each class may be silent. Trades
// on an illiquid symbol can be minutes apart, and so can the streams
// pushed only when the book changes (bookTicker, diff depth): a quiet
// symbol's best bid and ask can stay put for minutes (BLZETH's recorded
// 0.03 bookTicker a second). The periodic streams (tickers, partial
// depth, mark price) push every few seconds whether or not anything
// traded; liquidations are rare, so they are never stale.
var defaultStale = map[kindClass]time.Duration{
	classTrade:      5 * time.Minute,
	classAggTrade:   5 * time.Minute,
	classKline:      2 * time.Minute,
	classBookTicker: 5 * time.Minute,
	classTicker:     time.Minute,
	classMiniTicker: time.Minute,
	classDepth:      5 * time.Minute,
	classPartial:    time.Minute,
	classMarkPrice:  time.Minute,
	classForceOrder: 0,
}

// publicRoute reports whether a USD-M stream kind is served under /public
// (high-frequency book data) rather than /market.
func (k streamKind) publicRoute() bool {
	return k.class == classBookTicker || k.class == classDepth || k.class == classPartial
}

var (
	spotIntervals    = []string{"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
	futuresIntervals = spotIntervals[1:]
	plainKinds       = map[string]kindClass{
		"trade": classTrade, "aggTrade": classAggTrade, "bookTicker": classBookTicker,
		"ticker": classTicker, "miniTicker": classMiniTicker, "depth": classDepth,
		"depth5": classPartial, "depth10": classPartial, "depth20": classPartial,
		"markPrice": classMarkPrice, "forceOrder": classForceOrder,
	}
)

const kindList = "trade, aggTrade, kline_<interval>, bookTicker, ticker, miniTicker, depth, depth5, depth10, depth20, markPrice, forceOrder"

// parseKind reads one configured stream kind for market m.
func parseKind(m market.Market, s string) (streamKind, error) {
	base, speed, hasSpeed := strings.Cut(s, "@")
	if iv, ok := strings.CutPrefix(base, "kline_"); ok {
		ivs := spotIntervals
		if m.Futures() {
			ivs = futuresIntervals
		}
		if !slices.Contains(ivs, iv) {
			return streamKind{}, fmt.Errorf("kline interval %q is not one of %s on %v", iv, strings.Join(ivs, " "), m)
		}
		if hasSpeed {
			return streamKind{}, fmt.Errorf("%q: kline streams take no update speed", s)
		}
		return streamKind{Name: s, class: classKline}, nil
	}
	class, ok := plainKinds[base]
	if !ok {
		return streamKind{}, fmt.Errorf("unknown stream kind %q (want %s)", s, kindList)
	}
	if (class == classMarkPrice || class == classForceOrder) && !m.Futures() {
		return streamKind{}, fmt.Errorf("%q is a futures stream; spot does not have it", s)
	}
	if hasSpeed {
		var speeds []string
		switch {
		case class == classDepth || class == classPartial:
			speeds = []string{"100ms", "1000ms"}
			if m.Futures() {
				speeds = []string{"100ms", "250ms", "500ms"}
			}
		case class == classMarkPrice:
			speeds = []string{"1s"}
		}
		if speeds == nil {
			return streamKind{}, fmt.Errorf("%q: %s streams take no update speed", s, base)
		}
		if !slices.Contains(speeds, speed) {
			return streamKind{}, fmt.Errorf("%q: update speed of %s on %v is one of %s", s, base, m, strings.Join(speeds, ", "))
		}
	}
	return streamKind{Name: s, class: class}, nil
}

// validSymbol reports whether s is spelled as Binance lists symbols:
// upper-case letters and digits, and on futures an optional _SUFFIX
// (BTCUSD_PERP, BTCUSDT_250627).
func validSymbol(m market.Market, s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	head, tail, under := strings.Cut(s, "_")
	if under && (!m.Futures() || tail == "") {
		return false
	}
	for _, part := range []string{head, tail} {
		for _, c := range part {
			if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return head != ""
}

// settings is a validated Config with every default filled in.
type settings struct {
	feed          string
	market        market.Market
	testnet       bool
	symbols       []string
	kinds         []streamKind
	wsURL         string
	restURL       string
	wsRoutes      bool // USD-M: streams go under /public or /market
	bookInterval  time.Duration
	bookDepth     int
	stale         map[string]time.Duration // by kind name; 0: never stale
	backfillCount int64
	backfillAge   time.Duration
	weightLimit   int
	rotateAfter   time.Duration
	perConn       int
	queueWait     time.Duration
	apiKey        string
}

// Binance's endpoints, per market and network.
type endpoints struct{ ws, rest string }

var defaultEndpoints = map[market.Market][2]endpoints{
	// [mainnet, testnet]
	market.Spot: {
		{ws: "wss://stream.binance.com:9443", rest: "https://api.binance.com"},
		{ws: "wss://stream.testnet.binance.vision", rest: "https://testnet.binance.vision"},
	},
	market.USDM: {
		{ws: "wss://fstream.binance.com", rest: "https://fapi.binance.com"},
		{ws: "wss://fstream.binancefuture.com", rest: "https://testnet.binancefuture.com"},
	},
	market.COINM: {
		{ws: "wss://dstream.binance.com", rest: "https://dapi.binance.com"},
		{ws: "wss://dstream.binancefuture.com", rest: "https://testnet.binancefuture.com"},
	},
}

// weightLimits are Binance's REST weight limits per minute and IP.
func exchangeWeightLimit(m market.Market) int {
	if m.Futures() {
		return 2400
	}
	return 6000
}

// resolve validates c and fills in the defaults, adding every problem to
// check (which holds those of decoding c: a key that did not decode is
// not checked again), and returns them all at once, each naming its key.
func (c *Config) resolve(feed string, check *sdk.ConfigCheck) (*settings, error) {
	bad := func(key, format string, args ...any) { check.That(key, false, format, args...) }
	s := &settings{feed: feed}

	name := c.Market
	if name == "" {
		name = market.Spot.String()
	}
	m, err := market.ParseMarket(name)
	if err != nil {
		bad("market", "must be spot, usdm or coinm, got %q", c.Market)
		m = market.Spot // so the rest is still checked
	}
	s.market = m
	s.testnet = c.Testnet

	if len(c.Symbols) == 0 {
		bad("symbols", "must list at least one symbol")
	}
	seenSym := map[string]int{}
	for i, sym := range c.Symbols {
		key := "symbols[" + strconv.Itoa(i) + "]"
		switch up := strings.ToUpper(sym); {
		case !validSymbol(m, up):
			hint := "upper-case letters and digits, like BTCUSDT"
			if m.Futures() {
				hint = "upper-case letters and digits with an optional _SUFFIX, like BTCUSDT or BTCUSD_PERP"
			}
			bad(key, "%q is not a %v symbol (%s)", sym, m, hint)
		case up != sym:
			bad(key, "%q must be upper case, as Binance lists it: %q", sym, up)
		default:
			if j, dup := seenSym[sym]; dup {
				bad(key, "%q is already listed at symbols[%d]", sym, j)
				continue
			}
			seenSym[sym] = i
			s.symbols = append(s.symbols, sym)
		}
	}

	if len(c.Streams) == 0 {
		bad("streams", "must list at least one stream kind")
	}
	seenKind := map[string]int{}
	bookAt, tickerAt := -1, -1
	for i, name := range c.Streams {
		key := "streams[" + strconv.Itoa(i) + "]"
		k, err := parseKind(m, name)
		if err != nil {
			bad(key, "%s", err.Error())
			continue
		}
		if j, dup := seenKind[name]; dup {
			bad(key, "%q is already listed at streams[%d]", name, j)
			continue
		}
		seenKind[name] = i
		// Kinds that write the same measurement with the same key would
		// overwrite each other's points.
		switch k.class {
		case classDepth, classPartial:
			if bookAt >= 0 {
				bad(key, "%q and %q would both write the book measurement; list one depth stream", name, c.Streams[bookAt])
				continue
			}
			bookAt = i
		case classTicker, classMiniTicker:
			if tickerAt >= 0 {
				bad(key, "%q and %q would both write the ticker measurement; list one of them", name, c.Streams[tickerAt])
				continue
			}
			tickerAt = i
		}
		s.kinds = append(s.kinds, k)
	}

	nets := defaultEndpoints[m]
	net := nets[0]
	if c.Testnet {
		net = nets[1]
	}
	s.wsURL, s.restURL = net.ws, net.rest
	s.wsRoutes = m == market.USDM && !c.Testnet && c.WSURL == ""
	if c.WSURL != "" {
		if u, err := url.Parse(c.WSURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.RawQuery != "" {
			bad("ws_url", "must be a ws:// or wss:// base URL without a query, got %q", c.WSURL)
		}
		s.wsURL = strings.TrimSuffix(c.WSURL, "/")
	}
	if c.RESTURL != "" {
		if u, err := url.Parse(c.RESTURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			bad("rest_url", "must be an http:// or https:// base URL without a query, got %q", c.RESTURL)
		}
		s.restURL = strings.TrimSuffix(c.RESTURL, "/")
	}

	s.bookInterval = DefaultBookInterval
	if c.BookInterval != nil {
		if d := time.Duration(*c.BookInterval); d < minBookInterval {
			bad("book_interval", "must be at least %v, got %v", minBookInterval, d)
		} else {
			s.bookInterval = d
		}
	}
	s.bookDepth = DefaultBookDepth
	if c.BookDepth != nil {
		if n := *c.BookDepth; n < 1 || n > MaxBookDepth {
			bad("book_depth", "must be between 1 and %d, got %d", MaxBookDepth, n)
		} else {
			s.bookDepth = n
		}
	}

	s.stale = map[string]time.Duration{}
	for _, k := range s.kinds {
		s.stale[k.Name] = defaultStale[k.class]
	}
	for _, name := range slices.Sorted(maps.Keys(c.StaleAfter)) {
		v := c.StaleAfter[name]
		key := "stale_after." + name
		if _, ok := seenKind[name]; !ok {
			bad(key, "%q is not one of the configured streams", name)
			continue
		}
		d := time.Duration(v)
		if d < 0 {
			bad(key, "must not be negative, got %v", d)
			continue
		}
		s.stale[name] = d
	}

	s.backfillCount, s.backfillAge = DefaultBackfillCount, DefaultBackfillAge
	if mb := c.MaxBackfill; mb != nil {
		if mb.Count != nil {
			if *mb.Count < 0 {
				bad("max_backfill.count", "must not be negative, got %d", *mb.Count)
			} else {
				s.backfillCount = *mb.Count
			}
		}
		if mb.Age != nil {
			if d := time.Duration(*mb.Age); d < 0 {
				bad("max_backfill.age", "must not be negative, got %v", d)
			} else {
				s.backfillAge = d
			}
		}
	}

	s.weightLimit = exchangeWeightLimit(m) / 2
	if c.RESTWeightLimit != nil {
		if n, limit := *c.RESTWeightLimit, exchangeWeightLimit(m); n < 50 || n > limit {
			bad("rest_weight_limit", "must be between 50 and %d (Binance's limit on %v), got %d", limit, m, n)
		} else {
			s.weightLimit = n
		}
	}

	s.rotateAfter = DefaultRotateAfter
	if c.RotateAfter != nil {
		if d := time.Duration(*c.RotateAfter); d < minRotateAfter || d >= maxLifetime {
			bad("rotate_after", "must be at least %v and under 24h (Binance closes connections at 24h), got %v", minRotateAfter, d)
		} else {
			s.rotateAfter = d
		}
	}

	s.perConn = MaxStreamsPerConn
	if c.StreamsPerConnection != nil {
		if n := *c.StreamsPerConnection; n < 1 || n > MaxStreamsPerConn {
			bad("streams_per_connection", "must be between 1 and %d, got %d", MaxStreamsPerConn, n)
		} else {
			s.perConn = n
		}
	}
	s.queueWait = DefaultQueueWait
	if c.QueueWait != nil {
		if d := time.Duration(*c.QueueWait); d < 0 || d > maxQueueWait {
			bad("queue_wait", "must be between 0s and %v, got %v", maxQueueWait, d)
		} else {
			s.queueWait = d
		}
	}
	s.apiKey = c.APIKey

	if err := check.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// streamName is the wire name of one symbol's stream of kind k.
func streamName(symbol string, k streamKind) string {
	return strings.ToLower(symbol) + "@" + k.Name
}

// has reports whether a stream kind of class c is configured.
func (s *settings) has(c kindClass) bool {
	return slices.ContainsFunc(s.kinds, func(k streamKind) bool { return k.class == c })
}

// measurements lists what the configured streams emit. The agent
// declares feed_events, where it writes the plugin's events, itself.
func (s *settings) measurements() []sluice.Measurement {
	want := map[string]bool{}
	for _, k := range s.kinds {
		switch k.class {
		case classTrade:
			want[market.MeasTrades] = true
		case classAggTrade:
			want[market.MeasAggTrades] = true
		case classKline:
			want[market.MeasCandles] = true
		case classBookTicker:
			want[market.MeasBookTicker] = true
		case classTicker, classMiniTicker:
			want[market.MeasTicker] = true
		case classDepth, classPartial:
			want[market.MeasBook] = true
		case classMarkPrice:
			want[market.MeasMarkPrice] = true
		case classForceOrder:
			want[market.MeasLiquidations] = true
		}
	}
	var out []sluice.Measurement
	for _, m := range market.Measurements() {
		if want[m.Name] {
			out = append(out, m)
		}
	}
	return out
}
