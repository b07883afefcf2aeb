package jsonws

import (
	"math/big"
	"strconv"
	"strings"
)

// Decimal numbers are compared, scaled and converted exactly: a trade id
// of 27 digits must not become a float whose neighbours are equal, and a
// price times a contract size must be the product rounded once.

const (
	// maxDecimalLen bounds the text of a number handled exactly; JSON
	// numbers in market data are far shorter.
	maxDecimalLen = 400
	// maxDecimalExp bounds an exponent (1e999999999 would otherwise
	// make big.Rat build a billion-digit power of ten).
	maxDecimalExp = 400
	// exactDigits is how many significant decimal digits always survive
	// a round trip through a float64.
	exactDigits = 15
)

// parseDecimal reads a JSON-style decimal number (optional sign, digits,
// fraction, exponent) exactly. It refuses anything else, and numbers
// longer than maxDecimalLen or with an exponent past maxDecimalExp.
func parseDecimal(s string) (*big.Rat, bool) {
	if s == "" || len(s) > maxDecimalLen || !isDecimal(s) {
		return nil, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > maxDecimalExp || e < -maxDecimalExp {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// isDecimal checks the JSON number grammar, loosened as numeric strings
// are written: a leading "+", leading zeros and ".5" are allowed.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		frac := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, frac = i+1, frac+1
		}
		if frac == 0 {
			return false
		}
		digits += frac
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// significantDigits counts the digits of s's mantissa from the first
// non-zero one, trailing zeros of a fraction included.
func significantDigits(s string) int {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	n, started := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		if c != '0' {
			started = true
		}
		if started {
			n++
		}
	}
	return n
}

// floatExact reports whether the decimal number s reads as a float64
// that prints back as the same number: true for 0.1 and 52648.62, false
// for 137005445109359286410323766 or 9007199254740993, which a float
// would round to a neighbour.
func floatExact(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false
	}
	if significantDigits(s) <= exactDigits {
		return true
	}
	want, ok := parseDecimal(s)
	if !ok {
		return false
	}
	got, ok := parseDecimal(strconv.FormatFloat(f, 'g', -1, 64))
	return ok && got.Cmp(want) == 0
}

// decimalEqual compares two decimal numbers by value, exactly: 1 equals
// 1.0 and 1e0, and two 27-digit ids that differ in the last digit differ.
func decimalEqual(a, b string) bool {
	if a == b {
		return true
	}
	x, errX := strconv.ParseFloat(a, 64)
	y, errY := strconv.ParseFloat(b, 64)
	if errX != nil || errY != nil {
		return false
	}
	if x != y {
		return false // values that differ as floats differ exactly
	}
	if significantDigits(a) <= exactDigits && significantDigits(b) <= exactDigits {
		return true
	}
	ra, okA := parseDecimal(a)
	rb, okB := parseDecimal(b)
	return okA && okB && ra.Cmp(rb) == 0
}

// exactDecimal writes r, a number with a finite decimal expansion (every
// product of decimals has one), in plain decimal notation without
// losing a digit.
func exactDecimal(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	// The denominator is 2^a·5^b: max(a, b) fraction digits suffice.
	d := new(big.Int).Set(r.Denom())
	two, five := big.NewInt(2), big.NewInt(5)
	var a, b int
	m := new(big.Int)
	for {
		q, rem := new(big.Int).QuoRem(d, two, m)
		if rem.Sign() != 0 {
			break
		}
		d, a = q, a+1
	}
	for {
		q, rem := new(big.Int).QuoRem(d, five, m)
		if rem.Sign() != 0 {
			break
		}
		d, b = q, b+1
	}
	s := r.FloatString(max(a, b))
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
