package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/plugins/binance/market"
	"github.com/valyala/fastjson"
)

// fields reads the keys of a JSON object by exact name and keeps the first
// error, as bufio.Scanner and encoding/binary's readers do: once a read
// has failed, every later one does nothing and returns a zero value. A
// parser reads all the keys it needs in a row and checks err once, before
// it builds its point; the error it reports is the one it would have
// returned at the first failing read.
//
// A parser keeps its fields on its stack: reading allocates nothing, and
// only a failure formats an error. Each read fails on a missing key or a
// value of the wrong JSON type; the opt* reads report absence instead.
type fields struct {
	o *fastjson.Object // the object read; switched to read a nested one
	// in prefixes the errors of the reads made while it is set: the path
	// of the nested object being read ("k.", "o.").
	in  string
	err error
}

var errMissing = errors.New("missing")

// fail records err unless a read failed before.
func (f *fields) fail(err error) {
	if f.err != nil {
		return
	}
	if f.in != "" {
		err = fmt.Errorf("%s%w", f.in, err)
	}
	f.err = err
}

func (f *fields) value(key string) *fastjson.Value {
	if f.err != nil {
		return nil
	}
	v := f.o.Get(key)
	if v == nil {
		f.fail(fmt.Errorf("%s: %w", key, errMissing))
	}
	return v
}

// has reports whether key is present, once nothing has failed.
func (f *fields) has(key string) bool {
	return f.err == nil && f.o.Get(key) != nil
}

// str returns a string value's bytes, which belong to the parsed frame.
func (f *fields) str(key string) []byte {
	v := f.value(key)
	if v == nil {
		return nil
	}
	b, err := v.StringBytes()
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
	}
	return b
}

func (f *fields) object(key string) *fastjson.Object {
	v := f.value(key)
	if v == nil {
		return nil
	}
	o, err := v.Object()
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
	}
	return o
}

func (f *fields) int(key string) int64 {
	v := f.value(key)
	if v == nil {
		return 0
	}
	n, err := v.Int64()
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
	}
	return n
}

// optInt reads an integer that may be absent; ok is false when it is, or
// when the read failed.
func (f *fields) optInt(key string) (n int64, ok bool) {
	if !f.has(key) {
		return 0, false
	}
	n = f.int(key)
	return n, f.err == nil
}

func (f *fields) bool(key string) bool {
	v := f.value(key)
	if v == nil {
		return false
	}
	b, err := v.Bool()
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
	}
	return b
}

// decimal reads a Binance decimal string (see parseDecimal).
func (f *fields) decimal(key string) float64 {
	b := f.str(key)
	if f.err != nil {
		return 0
	}
	x, err := parseDecimal(b2s(b))
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
	}
	return x
}

// optDecimal reads a decimal that may be absent, as optInt does.
func (f *fields) optDecimal(key string) (x float64, ok bool) {
	if !f.has(key) {
		return 0, false
	}
	x = f.decimal(key)
	return x, f.err == nil
}

// time reads a unix-millisecond timestamp.
func (f *fields) time(key string) time.Time {
	ms := f.int(key)
	if f.err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// optTime reads a timestamp that may be absent: the zero time then.
func (f *fields) optTime(key string) time.Time {
	if !f.has(key) {
		return time.Time{}
	}
	return f.time(key)
}

// takerSide reads "m" (the buyer is the maker), never "M".
func (f *fields) takerSide() string {
	if f.bool("m") {
		return market.SideSell
	}
	return market.SideBuy
}

// decimalFields returns a float field for each key, all of which must be
// present, in a slice with room for capacity fields. After a failure it
// returns nil, so that a frame that fails early costs no allocation.
func (f *fields) decimalFields(keys []keyName, capacity int) []sluice.Field {
	if f.err != nil {
		return nil
	}
	out := make([]sluice.Field, 0, capacity)
	return f.appendDecimals(out, keys)
}

func (f *fields) appendDecimals(out []sluice.Field, keys []keyName) []sluice.Field {
	for _, k := range keys {
		x := f.decimal(k.key)
		if f.err != nil {
			return out
		}
		out = append(out, sluice.Field{Key: k.name, Value: sluice.Float(x)})
	}
	return out
}

// appendOptDecimals appends a float field for each key that is present.
func (f *fields) appendOptDecimals(out []sluice.Field, keys []keyName) []sluice.Field {
	for _, k := range keys {
		if x, ok := f.optDecimal(k.key); ok {
			out = append(out, sluice.Field{Key: k.name, Value: sluice.Float(x)})
		}
	}
	return out
}

// levels appends the [price, quantity] pairs of a depth array to dst.
// Legacy frames carry a third, ignored element per level.
func (f *fields) levels(key string, dst []market.Level) []market.Level {
	v := f.value(key)
	if v == nil {
		return dst
	}
	items, err := v.Array()
	if err != nil {
		f.fail(fmt.Errorf("%s: %w", key, err))
		return dst
	}
	for i, item := range items {
		l, err := parseLevel(item)
		if err != nil {
			f.fail(fmt.Errorf("%s[%d]: %w", key, i, err))
			return dst
		}
		dst = append(dst, l)
	}
	return dst
}

// symbol reads a symbol, which must not be empty, and interns it.
func (p *Parser) symbol(f *fields, key string) string {
	if f.err != nil {
		return ""
	}
	v := f.o.Get(key)
	if v == nil {
		f.fail(fmt.Errorf("symbol: %s: %w", key, errMissing))
		return ""
	}
	b, err := v.StringBytes()
	switch {
	case err != nil:
		f.fail(fmt.Errorf("symbol: %s: %w", key, err))
		return ""
	case len(b) == 0:
		f.fail(fmt.Errorf("symbol: %s: empty", key))
		return ""
	}
	return p.intern(b)
}

// parseLevel reads one [price, quantity] pair.
func parseLevel(v *fastjson.Value) (market.Level, error) {
	pair, err := v.Array()
	if err != nil {
		return market.Level{}, err
	}
	if len(pair) < 2 {
		return market.Level{}, fmt.Errorf("level has %d elements, want price and quantity", len(pair))
	}
	pb, err := pair[0].StringBytes()
	if err != nil {
		return market.Level{}, fmt.Errorf("price: %w", err)
	}
	qb, err := pair[1].StringBytes()
	if err != nil {
		return market.Level{}, fmt.Errorf("quantity: %w", err)
	}
	key, err := ParsePriceKey(b2s(pb))
	if err != nil {
		return market.Level{}, fmt.Errorf("price: %w", err)
	}
	price, err := parseDecimal(b2s(pb))
	if err != nil {
		return market.Level{}, fmt.Errorf("price: %w", err)
	}
	qty, err := parseDecimal(b2s(qb))
	if err != nil {
		return market.Level{}, fmt.Errorf("quantity: %w", err)
	}
	if qty < 0 {
		return market.Level{}, fmt.Errorf("quantity %q is negative", qb)
	}
	return market.Level{Key: key, Price: price, Quantity: qty}, nil
}
