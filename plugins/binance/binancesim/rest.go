package binancesim

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// restPrefix is where a market's REST endpoints live, as on Binance.
func restPrefix(m market.Market) string {
	switch m {
	case market.USDM:
		return "/fapi/v1/"
	case market.COINM:
		return "/dapi/v1/"
	}
	return "/api/v3/"
}

// weightKey and weightWindow account REST weight per market and IP in
// fixed one-minute windows, as Binance's REQUEST_WEIGHT 1 MINUTE limit.
type weightKey struct {
	m  market.Market
	ip string
}

type weightWindow struct {
	minute    int64
	used      int
	warned    bool // a 429 was answered in this window
	bannedTil time.Time
}

// weight is the request weight of an endpoint (Binance's documented
// values; depth depends on limit).
func weight(m market.Market, endpoint string, limit int) int {
	spot := m == market.Spot
	switch endpoint {
	case "ping", "time":
		return 1
	case "exchangeInfo":
		if spot {
			return 20
		}
		return 1
	case "depth":
		if spot {
			switch {
			case limit <= 100:
				return 5
			case limit <= 500:
				return 25
			case limit <= 1000:
				return 50
			}
			return 250
		}
		switch {
		case limit <= 50:
			return 2
		case limit <= 100:
			return 5
		case limit <= 500:
			return 10
		}
		return 20
	case "aggTrades":
		if spot {
			return 4
		}
		return 20
	case "trades":
		if spot {
			return 25
		}
		return 5
	case "historicalTrades":
		if spot {
			return 25
		}
		return 20
	}
	return 1
}

// restError is a Binance error body with its HTTP status.
type restError struct {
	status int
	code   int
	msg    string
}

func writeJSONError(w http.ResponseWriter, status, code int, msg string) {
	b, _ := json.Marshal(struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(b)
}

func errMandatory(p string) *restError {
	return &restError{http.StatusBadRequest, -1102,
		fmt.Sprintf("Mandatory parameter '%s' was not sent, was empty/null, or malformed.", p)}
}

func errIllegal(p string) *restError {
	return &restError{http.StatusBadRequest, -1100,
		fmt.Sprintf("Illegal characters found in parameter '%s'; legal range is '^[0-9]{1,20}$'.", p)}
}

var errSymbol = &restError{http.StatusBadRequest, -1121, "Invalid symbol."}

func (s *Sim) serveREST(w http.ResponseWriter, r *http.Request, mk *venue, path string) {
	endpoint, ok := strings.CutPrefix(path, restPrefix(mk.m))
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	switch endpoint {
	case "ping", "time", "exchangeInfo", "depth", "trades", "historicalTrades", "aggTrades":
	default:
		http.NotFound(w, r)
		return
	}
	s.st.rest.Add(1)
	q := r.URL.Query()
	limit, lerr := intParam(q.Get("limit"), "limit")
	if endpoint == "depth" && limit == 0 {
		limit = 100
		if mk.m != market.Spot {
			limit = 500
		}
	}
	if !s.chargeWeight(w, r, mk, weight(mk.m, endpoint, limit)) {
		return
	}
	if lerr != nil {
		writeJSONError(w, lerr.status, lerr.code, lerr.msg)
		return
	}
	var body []byte
	var rerr *restError
	switch endpoint {
	case "ping":
		body = []byte("{}")
	case "time":
		body = fmt.Appendf(nil, `{"serverTime":%d}`, s.opts.now().UnixMilli())
	case "exchangeInfo":
		body = s.exchangeInfo(mk)
	case "depth":
		body, rerr = s.depth(mk, q.Get("symbol"), limit)
	case "aggTrades":
		body, rerr = s.aggTradesREST(mk, q, limit)
	case "trades", "historicalTrades":
		body, rerr = s.tradesREST(mk, q, limit, endpoint == "historicalTrades")
	}
	if rerr != nil {
		writeJSONError(w, rerr.status, rerr.code, rerr.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Write(body)
}

func intParam(v, name string) (int, *restError) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errIllegal(name)
	}
	return int(min(n, 1<<31)), nil
}

// chargeWeight adds a request's weight to its IP's window, sets the
// X-MBX-USED-WEIGHT headers and answers 429 (over the limit) or 418 (an IP
// that went on after a 429 is banned for BanDuration). It reports whether
// the request may proceed.
func (s *Sim) chargeWeight(w http.ResponseWriter, r *http.Request, mk *venue, wt int) bool {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := s.opts.now()
	s.mu.Lock()
	ww := s.weights[weightKey{mk.m, ip}]
	if ww == nil {
		ww = &weightWindow{}
		s.weights[weightKey{mk.m, ip}] = ww
	}
	if minute := now.Unix() / 60; minute != ww.minute {
		ww.minute, ww.used, ww.warned = minute, 0, false
	}
	ww.used += wt
	used, banned := ww.used, ww.bannedTil
	over := used > mk.lim.weightLimit
	warned := ww.warned
	if over && !now.Before(banned) && warned {
		banned = now.Add(mk.lim.banDuration)
		ww.bannedTil = banned
	}
	if over {
		ww.warned = true
	}
	s.mu.Unlock()

	h := w.Header()
	h["X-MBX-USED-WEIGHT-1M"] = []string{strconv.Itoa(used)}
	if mk.m == market.Spot {
		h["X-MBX-USED-WEIGHT"] = []string{strconv.Itoa(used)}
	}
	switch {
	case now.Before(banned):
		s.st.rest418.Add(1)
		h.Set("Retry-After", strconv.Itoa(int(banned.Sub(now).Seconds()+0.999)))
		writeJSONError(w, http.StatusTeapot, -1003, fmt.Sprintf(
			"Way too much request weight used; IP banned until %d. Please use WebSocket Streams for live updates to avoid bans.",
			banned.UnixMilli()))
		return false
	case over:
		s.st.rest429.Add(1)
		next := time.Unix((now.Unix()/60+1)*60, 0)
		h.Set("Retry-After", strconv.Itoa(max(1, int(next.Sub(now).Seconds()+0.999))))
		writeJSONError(w, http.StatusTooManyRequests, -1003, fmt.Sprintf(
			"Too much request weight used; current limit is %d request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
			mk.lim.weightLimit))
		return false
	}
	return true
}

// ResetWeights forgets every IP's used weight and ban.
func (s *Sim) ResetWeights() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.weights)
}

var futuresDepthLimits = []int{5, 10, 20, 50, 100, 500, 1000}

func (s *Sim) depth(mk *venue, symbol string, limit int) ([]byte, *restError) {
	if symbol == "" {
		return nil, errMandatory("symbol")
	}
	if mk.m == market.Spot {
		limit = min(max(limit, 1), 5000)
	} else if !slices.Contains(futuresDepthLimits, limit) {
		return nil, &restError{http.StatusBadRequest, -1100,
			"Illegal characters found in parameter 'limit'; legal range is '5, 10, 20, 50, 100, 500, 1000'."}
	}
	if mk.replay != nil {
		if b := mk.replay.snapshot(strings.ToUpper(symbol), int(s.replayPos.Load())); b != nil {
			return b, nil
		}
		return nil, errSymbol
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
	sym := mk.by[symbol]
	if sym == nil {
		return nil, errSymbol
	}
	return mk.depthSnapshot(sym, limit, s.nowUs/1000), nil
}

func (s *Sim) aggTradesREST(mk *venue, q map[string][]string, limit int) ([]byte, *restError) {
	symbol := first(q["symbol"])
	if symbol == "" {
		return nil, errMandatory("symbol")
	}
	fromID, hasFrom, rerr := optInt64(q, "fromId")
	if rerr != nil {
		return nil, rerr
	}
	start, hasStart, rerr := optInt64(q, "startTime")
	if rerr != nil {
		return nil, rerr
	}
	end, hasEnd, rerr := optInt64(q, "endTime")
	if rerr != nil {
		return nil, rerr
	}
	if limit <= 0 {
		limit = 500
	}
	limit = min(limit, 1000)
	s.mu.Lock()
	defer s.mu.Unlock()
	sym := mk.by[symbol]
	if sym == nil {
		return nil, errSymbol
	}
	n := sym.aggs.len()
	from := max(n-limit, 0) // newest limit
	if hasFrom {
		// Ids older than the history start at its oldest entry: the
		// client sees the jump.
		firstID, _ := sym.firstAgg()
		from = int(min(max(fromID-firstID, 0), int64(n)))
	} else if hasStart || hasEnd {
		from = 0
		for from < n && hasStart && sym.aggs.at(from).ms < start {
			from++
		}
	}
	b := []byte{'['}
	for i, k := from, 0; i < n && k < limit; i++ {
		a := sym.aggs.at(i)
		if hasEnd && !hasFrom && a.ms > end {
			break
		}
		if k > 0 {
			b = append(b, ',')
		}
		b = mk.aggTradeREST(b, sym, &a)
		k++
	}
	return append(b, ']'), nil
}

func (s *Sim) tradesREST(mk *venue, q map[string][]string, limit int, historical bool) ([]byte, *restError) {
	symbol := first(q["symbol"])
	if symbol == "" {
		return nil, errMandatory("symbol")
	}
	fromID, hasFrom, rerr := optInt64(q, "fromId")
	if rerr != nil {
		return nil, rerr
	}
	if limit <= 0 {
		limit = 500
	}
	limit = min(limit, 1000)
	s.mu.Lock()
	defer s.mu.Unlock()
	sym := mk.by[symbol]
	if sym == nil {
		return nil, errSymbol
	}
	n := sym.trades.len()
	from := max(n-limit, 0)
	if historical && hasFrom {
		firstID, _ := sym.firstTrade()
		from = int(min(max(fromID-firstID, 0), int64(n)))
	}
	b := []byte{'['}
	for i := from; i < n && i < from+limit; i++ {
		if i > from {
			b = append(b, ',')
		}
		t := sym.trades.at(i)
		b = mk.tradeREST(b, sym, &t)
	}
	return append(b, ']'), nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func optInt64(q map[string][]string, name string) (int64, bool, *restError) {
	v := first(q[name])
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, errIllegal(name)
	}
	return n, true, nil
}

// exchangeInfo is a minimal exchangeInfo: the rate limits and, per symbol,
// its assets, status and price and lot filters.
func (s *Sim) exchangeInfo(mk *venue) []byte {
	type filter struct {
		FilterType string `json:"filterType"`
		MinPrice   string `json:"minPrice,omitempty"`
		MaxPrice   string `json:"maxPrice,omitempty"`
		TickSize   string `json:"tickSize,omitempty"`
		MinQty     string `json:"minQty,omitempty"`
		MaxQty     string `json:"maxQty,omitempty"`
		StepSize   string `json:"stepSize,omitempty"`
	}
	type sym struct {
		Symbol            string   `json:"symbol"`
		Pair              string   `json:"pair,omitempty"`
		ContractType      string   `json:"contractType,omitempty"`
		Status            string   `json:"status,omitempty"`
		ContractStatus    string   `json:"contractStatus,omitempty"`
		BaseAsset         string   `json:"baseAsset"`
		QuoteAsset        string   `json:"quoteAsset"`
		PricePrecision    *int     `json:"pricePrecision,omitempty"`
		QuantityPrecision *int     `json:"quantityPrecision,omitempty"`
		ContractSize      int64    `json:"contractSize,omitempty"`
		Filters           []filter `json:"filters"`
	}
	type rateLimit struct {
		RateLimitType string `json:"rateLimitType"`
		Interval      string `json:"interval"`
		IntervalNum   int    `json:"intervalNum"`
		Limit         int    `json:"limit"`
	}
	info := struct {
		Timezone        string      `json:"timezone"`
		ServerTime      int64       `json:"serverTime"`
		RateLimits      []rateLimit `json:"rateLimits"`
		ExchangeFilters []any       `json:"exchangeFilters"`
		Symbols         []sym       `json:"symbols"`
	}{
		Timezone:        "UTC",
		ServerTime:      s.opts.now().UnixMilli(),
		RateLimits:      []rateLimit{{"REQUEST_WEIGHT", "MINUTE", 1, mk.lim.weightLimit}},
		ExchangeFilters: []any{},
		Symbols:         []sym{},
	}
	s.mu.Lock()
	for _, sy := range mk.syms {
		tick := string(appendFixed(nil, 1, sy.pd, sy.pd))
		step := string(appendFixed(nil, 1, sy.qd, sy.qd))
		e := sym{Symbol: sy.name, BaseAsset: baseAsset(mk.m, sy.name), QuoteAsset: quoteAsset(mk.m, sy.name),
			Filters: []filter{
				{FilterType: "PRICE_FILTER", MinPrice: tick, MaxPrice: "1000000", TickSize: tick},
				{FilterType: "LOT_SIZE", MinQty: step, MaxQty: "9000000", StepSize: step},
			}}
		if mk.m == market.Spot {
			e.Status = "TRADING"
		} else {
			pd, qd := sy.pd, sy.qd
			e.Pair, e.PricePrecision, e.QuantityPrecision = sy.pair, &pd, &qd
			e.ContractType = "PERPETUAL"
			if !sy.perp {
				e.ContractType = "CURRENT_QUARTER"
			}
			if mk.m == market.USDM {
				e.Status = "TRADING"
			} else {
				e.ContractStatus, e.ContractSize = "TRADING", sy.contract
			}
		}
		info.Symbols = append(info.Symbols, e)
	}
	s.mu.Unlock()
	b, _ := json.Marshal(info)
	return b
}
