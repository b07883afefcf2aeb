package market

import "fmt"

// Market is one of Binance's market-data venues. It decides the order-book
// sequencing rules and the value of the `market` tag.
type Market uint8

// The venues. The zero Market is invalid so that an unset one is caught.
const (
	MarketInvalid Market = iota
	Spot                 // spot, stream.binance.com
	USDM                 // USD-M futures, fstream.binance.com
	COINM                // COIN-M futures, dstream.binance.com
)

var marketNames = [...]string{"invalid", "spot", "usdm", "coinm"}

// String returns the `market` tag value: spot, usdm or coinm.
func (m Market) String() string {
	if int(m) < len(marketNames) {
		return marketNames[m]
	}
	return fmt.Sprintf("market(%d)", m)
}

// ParseMarket is the inverse of Market.String.
func ParseMarket(s string) (Market, error) {
	for i, n := range marketNames {
		if i > 0 && n == s {
			return Market(i), nil
		}
	}
	return MarketInvalid, fmt.Errorf("unknown binance market %q (want spot, usdm or coinm)", s)
}

// Futures reports whether the venue is a futures one: it uses the futures
// depth sequencing (pu == previous u) rather than the spot one (U ==
// previous u + 1), and the futures REST paths, weights and streams.
func (m Market) Futures() bool { return m == USDM || m == COINM }

// Valid reports whether m is one of the venues.
func (m Market) Valid() bool { return m > MarketInvalid && int(m) < len(marketNames) }
