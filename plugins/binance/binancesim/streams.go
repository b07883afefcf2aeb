package binancesim

import (
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Update speeds, in milliseconds, of the diff and partial depth streams.
// Spot: @depth is 1000ms, @depth@100ms. Futures: @depth is 250ms,
// @depth@500ms, @depth@100ms.
var (
	spotDepthPeriods    = []int64{100, 1000}
	futuresDepthPeriods = []int64{100, 250, 500}
)

// partialName is one partial-depth stream of a symbol.
type partialName struct {
	levels int
	name   string
}

// streamNames are the stream names of one symbol, built once so that the
// generator looks up subscribers without building strings.
type streamNames struct {
	trade, aggTrade, bookTicker, ticker, miniTicker, forceOrder string
	markPrice, markPrice1s                                      string
	depth                                                       [][]string      // per depth period
	partial                                                     [][]partialName // per depth period
	kline                                                       map[string]string
}

// depthSuffixes returns the diff-depth stream suffixes of a period.
func depthSuffixes(m market.Market, period int64) []string {
	if m == market.Spot {
		if period == 1000 {
			return []string{"@depth", "@depth@1000ms"}
		}
		return []string{"@depth@" + strconv.FormatInt(period, 10) + "ms"}
	}
	if period == 250 {
		return []string{"@depth"}
	}
	return []string{"@depth@" + strconv.FormatInt(period, 10) + "ms"}
}

func intervals(m market.Market) []string {
	if m == market.Spot {
		return spotIntervals
	}
	return futuresIntervals
}

func makeNames(mk *venue, lower string) streamNames {
	n := streamNames{
		trade:      lower + "@trade",
		aggTrade:   lower + "@aggTrade",
		bookTicker: lower + "@bookTicker",
		ticker:     lower + "@ticker",
		miniTicker: lower + "@miniTicker",
		kline:      map[string]string{},
	}
	if mk.m != market.Spot {
		n.forceOrder = lower + "@forceOrder"
		n.markPrice = lower + "@markPrice"
		n.markPrice1s = lower + "@markPrice@1s"
	}
	for _, p := range mk.depthPeriods {
		var d []string
		var ps []partialName
		for _, suf := range depthSuffixes(mk.m, p) {
			d = append(d, lower+suf)
			for _, lv := range []int{5, 10, 20} {
				ps = append(ps, partialName{lv, lower + strings.Replace(suf, "@depth", "@depth"+strconv.Itoa(lv), 1)})
			}
		}
		n.depth = append(n.depth, d)
		n.partial = append(n.partial, ps)
	}
	for _, iv := range intervals(mk.m) {
		n.kline[iv] = lower + "@kline_" + iv
	}
	return n
}

// validStreams returns every per-symbol stream suffix a market accepts,
// and its all-market streams.
func validStreams(m market.Market) (suffixes, global map[string]bool) {
	suffixes = map[string]bool{
		"@trade": true, "@aggTrade": true, "@bookTicker": true,
		"@ticker": true, "@miniTicker": true,
	}
	global = map[string]bool{"!miniTicker@arr": true}
	periods := spotDepthPeriods
	if m != market.Spot {
		periods = futuresDepthPeriods
		for _, s := range []string{"@markPrice", "@markPrice@1s", "@forceOrder"} {
			suffixes[s] = true
		}
		for _, s := range []string{"!ticker@arr", "!bookTicker", "!markPrice@arr", "!markPrice@arr@1s", "!forceOrder@arr"} {
			global[s] = true
		}
	}
	for _, p := range periods {
		for _, suf := range depthSuffixes(m, p) {
			suffixes[suf] = true
			for _, lv := range []string{"5", "10", "20"} {
				suffixes[strings.Replace(suf, "@depth", "@depth"+lv, 1)] = true
			}
		}
	}
	for _, iv := range intervals(m) {
		suffixes["@kline_"+iv] = true
	}
	return suffixes, global
}

// validStream reports whether name is a stream the market offers: a
// lower-case symbol and a known suffix, or an all-market stream. A
// well-formed name for a symbol that does not exist is valid, as on
// Binance: it is accepted and never sends anything.
func (mk *venue) validStream(name string) bool {
	if mk.global[name] {
		return true
	}
	at := strings.IndexByte(name, '@')
	if at <= 0 || !mk.suffixes[name[at:]] {
		return false
	}
	for _, c := range name[:at] {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
