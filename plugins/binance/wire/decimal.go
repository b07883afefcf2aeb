package wire

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Binance sends prices and quantities as JSON strings holding plain
// decimals ("0.00000638", "-3.211"). They are checked against that grammar
// before strconv.ParseFloat, which would also take "NaN", "Inf", "0x1p-3"
// and "1e5": none of those is a Binance number, and a NaN must not reach a
// sink.

var errDecimal = errors.New("not a decimal")

// validDecimal reports whether s is -?digits(.digits)?.
func validDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == start {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i] != '.' {
		return false
	}
	i++
	frac := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i > frac && i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseDecimal parses a Binance decimal string into a float64, correctly
// rounded.
func parseDecimal(s string) (float64, error) {
	if !validDecimal(s) {
		return 0, fmt.Errorf("%q: %w", s, errDecimal)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return f, nil
}

// Price keys.
//
// The order book is keyed by price. Floats make poor keys: two spellings of
// one decimal ("0.10" and "0.1000") do round to the same float, but any
// arithmetic on them does not, and sorting by float hides that. The book
// keys each level by the price as an exact integer number of 1e-8 units
// (market.PriceScale), parsed digit by digit from the decimal string, never
// through a float. Eight decimals are the finest tick any Binance market
// quotes; a price with a nonzero ninth decimal is rejected rather than
// rounded into a neighbouring level. An int64 holds prices up to about
// 9.2e10, beyond any quote in any currency Binance lists.

// priceDecimals is the number of decimals a key holds: market.PriceScale
// is 10^priceDecimals.
const priceDecimals = 8

var errPriceKey = errors.New("not a price")

// ParsePriceKey returns the exact key of a non-negative decimal price
// string: the price times market.PriceScale, a market.Level's Key.
func ParsePriceKey(s string) (int64, error) {
	const maxKey = math.MaxInt64
	var key int64
	i := 0
	for i < len(s) && isDigit(s[i]) {
		d := int64(s[i] - '0')
		if key > (maxKey-d)/10 {
			return 0, fmt.Errorf("%q: too large: %w", s, errPriceKey)
		}
		key = key*10 + d
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: %w", s, errPriceKey)
	}
	frac := 0
	if i < len(s) {
		if s[i] != '.' || i+1 == len(s) {
			return 0, fmt.Errorf("%q: %w", s, errPriceKey)
		}
		for i++; i < len(s); i++ {
			if !isDigit(s[i]) {
				return 0, fmt.Errorf("%q: %w", s, errPriceKey)
			}
			if frac == priceDecimals {
				if s[i] != '0' {
					return 0, fmt.Errorf("%q: finer than 1e-%d: %w", s, priceDecimals, errPriceKey)
				}
				continue
			}
			d := int64(s[i] - '0')
			if key > (maxKey-d)/10 {
				return 0, fmt.Errorf("%q: too large: %w", s, errPriceKey)
			}
			key = key*10 + d
			frac++
		}
	}
	for ; frac < priceDecimals; frac++ {
		if key > maxKey/10 {
			return 0, fmt.Errorf("%q: too large: %w", s, errPriceKey)
		}
		key *= 10
	}
	return key, nil
}

// b2s views b as a string without copying. The string must not outlive b's
// contents: use it only for parsing and for map look-ups, never store it.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
