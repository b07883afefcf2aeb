package binancesim

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Options configure a Sim. The zero value is usable: every zero field takes
// the default named on it, which for the per-market limits is the value
// Binance documents for that market.
type Options struct {
	// Markets the simulator serves. Default: spot, usdm and coinm.
	Markets []market.Market
	// Symbols per market, upper case as Binance spells them (BTCUSDT,
	// BTCUSD_PERP). Default: DefaultSymbols.
	Symbols map[market.Market][]string
	// Seed makes the generated market deterministic: the same seed and
	// options give the same trades, ids and book events in the same order
	// of virtual time. Default 1.
	Seed uint64
	// TradeRate is the approximate number of trades per second a market
	// generates, over all its symbols together (busier symbols first, in a
	// Zipf-like split). Default 50.
	TradeRate float64
	// TakerShare is the fraction of engine events that are taker orders
	// (each fills about 2.2 trades); the rest rest or cancel orders, which
	// move the book (diff depth, bookTicker) without a trade. Real books
	// change many times per trade: the recorded spot sessions in
	// shared/data/binance show 1 to 5 % takers. Default 0.35, a market
	// where trades dominate. TradeRate stays the trade rate: a lower share
	// means more book events per second.
	TakerShare float64
	// Skew is the exponent of the activity split over symbols: symbol i
	// (from 1) has weight 1/i^Skew. Default 1; smaller is flatter.
	Skew float64
	// HistoryCap bounds the trades and the aggregate trades kept per symbol
	// for REST backfill and for Trades / AggTrades. Default 100000.
	HistoryCap int
	// Epoch is the virtual time the generator starts at; event times (E,
	// T) are Epoch plus the virtual time elapsed. Default: the wall clock
	// when Run starts or Advance is first called.
	Epoch time.Time
	// Manual turns the real-time driver off: Run only waits, and the test
	// moves the market with Advance. Connections, pings and limits still
	// run on the wall clock.
	Manual bool
	// Tick is how often Run advances the virtual clock. Default 10ms.
	Tick time.Duration

	// PingInterval is how often the server pings each connection. Default:
	// 20s on spot, 3m on futures.
	PingInterval time.Duration
	// PongTimeout drops a connection whose oldest unanswered ping is older
	// than this. Default: 1m on spot, 10m on futures. On spot only a pong
	// echoing a ping's payload counts; futures accept unsolicited pongs.
	PongTimeout time.Duration
	// MaxLifetime closes connections this old. Default 24h.
	MaxLifetime time.Duration
	// LifetimeClose is how a connection is closed at MaxLifetime (and by
	// ExpireConns). Binance documents only "expect to be disconnected at
	// the 24 hour mark"; default CloseGoingAway.
	LifetimeClose *Close
	// MaxIncoming is the number of incoming messages (text frames, pings
	// and pongs) per second past which a connection is closed. Default: 5
	// on spot, 10 on futures.
	MaxIncoming int
	// MaxStreams is the most streams one connection may hold. Default 1024.
	MaxStreams int
	// SendQueue bounds the frames waiting to be written to one connection.
	// A client too slow to drain it is disconnected, as Binance drops slow
	// consumers. Default 16384.
	SendQueue int

	// WeightLimit is the REST request weight allowed per IP per minute.
	// Default: 6000 on spot, 2400 on futures.
	WeightLimit int
	// BanDuration is how long an IP that kept calling after a 429 is
	// answered 418. Default 2m (Binance's first ban).
	BanDuration time.Duration
	// Now is the wall clock of the REST weight windows. Default time.Now.
	Now func() time.Time

	// Replay, when set, is a recorded session (see LoadReplay). Its market
	// serves the recorded frames and REST depth snapshots instead of
	// generated data.
	Replay *Replay
	// ReplaySpeed compresses the recording's time: 1 is real time, 10 ten
	// times faster, 0 as fast as the client reads.
	ReplaySpeed float64

	// Logger receives connection and fault events. Default: discard.
	Logger *slog.Logger
}

// Close says how the server ends a connection: with a close frame of the
// given code and reason, or, when Abrupt, by closing the TCP connection
// without one (the client sees 1006).
type Close struct {
	Code   int
	Reason string
	Abrupt bool
}

// Ways of closing, for the fault methods.
var (
	Abrupt         = Close{Abrupt: true}
	CloseNormal    = Close{Code: 1000}
	CloseGoingAway = Close{Code: 1001}
	ClosePolicy    = Close{Code: 1008, Reason: "Policy violation"}
)

// DefaultSymbols are the symbols of a market when Options.Symbols names
// none.
func DefaultSymbols(m market.Market) []string {
	switch m {
	case market.Spot, market.USDM:
		return []string{"BTCUSDT", "ETHUSDT"}
	case market.COINM:
		return []string{"BTCUSD_PERP", "ETHUSD_PERP"}
	}
	return nil
}

// limits are the per-market values Options resolves to.
type limits struct {
	pingInterval time.Duration
	pongTimeout  time.Duration
	maxLifetime  time.Duration
	lifetime     Close
	maxIncoming  int
	maxStreams   int
	sendQueue    int
	weightLimit  int
	banDuration  time.Duration
}

func (o *Options) limits(m market.Market) limits {
	spot := m == market.Spot
	pick := func(v, spotDef, futDef time.Duration) time.Duration {
		switch {
		case v > 0:
			return v
		case spot:
			return spotDef
		}
		return futDef
	}
	pickInt := func(v, spotDef, futDef int) int {
		switch {
		case v > 0:
			return v
		case spot:
			return spotDef
		}
		return futDef
	}
	l := limits{
		pingInterval: pick(o.PingInterval, 20*time.Second, 3*time.Minute),
		pongTimeout:  pick(o.PongTimeout, time.Minute, 10*time.Minute),
		maxLifetime:  pick(o.MaxLifetime, 24*time.Hour, 24*time.Hour),
		lifetime:     CloseGoingAway,
		maxIncoming:  pickInt(o.MaxIncoming, 5, 10),
		maxStreams:   pickInt(o.MaxStreams, 1024, 1024),
		sendQueue:    pickInt(o.SendQueue, 16384, 16384),
		weightLimit:  pickInt(o.WeightLimit, 6000, 2400),
		banDuration:  pick(o.BanDuration, 2*time.Minute, 2*time.Minute),
	}
	if o.LifetimeClose != nil {
		l.lifetime = *o.LifetimeClose
	}
	return l
}

func (o *Options) markets() []market.Market {
	if len(o.Markets) > 0 {
		return o.Markets
	}
	return []market.Market{market.Spot, market.USDM, market.COINM}
}

func (o *Options) symbols(m market.Market) []string {
	if s := o.Symbols[m]; len(s) > 0 {
		return s
	}
	return DefaultSymbols(m)
}

func (o *Options) seed() uint64 {
	if o.Seed == 0 {
		return 1
	}
	return o.Seed
}

func (o *Options) tradeRate() float64 {
	if o.TradeRate <= 0 {
		return 50
	}
	return o.TradeRate
}

func (o *Options) takerShare() float64 {
	if o.TakerShare <= 0 || o.TakerShare > 1 {
		return pTaker
	}
	return o.TakerShare
}

func (o *Options) skew() float64 {
	if o.Skew <= 0 {
		return 1
	}
	return o.Skew
}

func (o *Options) historyCap() int {
	if o.HistoryCap <= 0 {
		return 100_000
	}
	return o.HistoryCap
}

func (o *Options) tick() time.Duration {
	if o.Tick <= 0 {
		return 10 * time.Millisecond
	}
	return o.Tick
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// SyntheticSymbols returns n made-up symbol names for a market
// (S0001USDT..., S0001USD_PERP on COIN-M), for load with many symbols.
func SyntheticSymbols(m market.Market, n int) []string {
	out := make([]string, n)
	for i := range out {
		if m == market.COINM {
			out[i] = fmt.Sprintf("S%04dUSD_PERP", i+1)
		} else {
			out[i] = fmt.Sprintf("S%04dUSDT", i+1)
		}
	}
	return out
}
