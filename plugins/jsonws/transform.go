package jsonws

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// A tag's or field's value passes, after it is read (path, value or
// lookup), through these transforms in a fixed order, then through map
// and its type. They are a small fixed set, not a language: what feeds
// need to name a side, a symbol or a size.
//
//	regex  the text of the first capture group of an RE2 regex (a symbol
//	       inside a channel name: market.btcusdt.trade.detail)
//	abs    the absolute value of a number (Bitfinex's signed amount)
//	sign   -1, 0 or 1, the sign of a number, for map to name a side
//	scale  the number times a decimal factor, exactly (contracts to
//	       base units); the product is rounded once, by its type
//	case   upper or lower case of a string
type transforms struct {
	regex *regexp.Regexp
	abs   bool
	sign  bool
	scale *big.Rat
	upper bool
	lower bool
}

// Transform keys of a value spec, for messages.
const (
	caseUpper = "upper"
	caseLower = "lower"
)

func compileTransforms(spec ValueSpec) (transforms, error) {
	var t transforms
	if spec.Regex != "" {
		re, err := regexp.Compile(spec.Regex)
		if err != nil {
			return t, fmt.Errorf("regex: %v", err)
		}
		if re.NumSubexp() != 1 {
			return t, fmt.Errorf("regex: needs exactly one capture group, the part kept; %q has %d", spec.Regex, re.NumSubexp())
		}
		t.regex = re
	}
	if spec.Abs && spec.Sign {
		return t, errors.New("set at most one of abs and sign")
	}
	t.abs, t.sign = spec.Abs, spec.Sign
	if raw := strings.TrimSpace(string(spec.Scale)); raw != "" && raw != "null" {
		text := raw
		if raw[0] == '"' {
			if err := jsonUnquote(raw, &text); err != nil {
				return t, fmt.Errorf("scale: %v", err)
			}
		}
		r, ok := parseDecimal(strings.TrimSpace(text))
		if !ok || r.Sign() == 0 {
			return t, fmt.Errorf("scale: must be a non-zero decimal number such as 0.001 or 100, got %s", raw)
		}
		t.scale = r
	}
	switch spec.Case {
	case "":
	case caseUpper:
		t.upper = true
	case caseLower:
		t.lower = true
	default:
		return t, fmt.Errorf("case: must be upper or lower, not %q", spec.Case)
	}
	return t, nil
}

func (t *transforms) any() bool {
	return t.regex != nil || t.abs || t.sign || t.scale != nil || t.upper || t.lower
}

// apply runs the transforms on a scalar.
func (t *transforms) apply(v gjson.Result) (gjson.Result, error) {
	if t.regex != nil {
		s := textOf(v)
		m := t.regex.FindStringSubmatch(s)
		if m == nil {
			return v, fmt.Errorf("regex: %s does not match %s", describe(v), t.regex)
		}
		v = stringResult(m[1])
	}
	if t.abs || t.sign || t.scale != nil {
		s, ok := numText(v)
		if !ok || !isDecimal(s) {
			return v, fmt.Errorf("%s is not a number", describe(v))
		}
		switch {
		case t.abs:
			s = strings.TrimLeft(s, "+-")
		case t.sign:
			s = decimalSign(s)
		}
		if t.scale != nil {
			r, ok := parseDecimal(s)
			if !ok {
				return v, fmt.Errorf("scale: %s is out of range", describe(v))
			}
			s = exactDecimal(r.Mul(r, t.scale))
		}
		v = numberResult(s)
	}
	switch {
	case t.upper:
		v = stringResult(strings.ToUpper(textOf(v)))
	case t.lower:
		v = stringResult(strings.ToLower(textOf(v)))
	}
	return v, nil
}

// decimalSign is "-1", "0" or "1" for a decimal number's text.
func decimalSign(s string) string {
	mant := s
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
	}
	if strings.Trim(mant, "+-0.") == "" {
		return "0"
	}
	if strings.HasPrefix(s, "-") {
		return "-1"
	}
	return "1"
}

// stringResult is s as a gjson string value.
func stringResult(s string) gjson.Result {
	return gjson.Result{Type: gjson.String, Str: s, Raw: jsonQuote(s)}
}

// numberResult is a decimal number's text as a gjson number value.
func numberResult(s string) gjson.Result {
	f, _ := strconv.ParseFloat(s, 64)
	return gjson.Result{Type: gjson.Number, Num: f, Raw: s}
}
