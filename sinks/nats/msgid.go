package nats

import (
	"strconv"
	"strings"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/natsbus"
)

// idByte keeps what a message id component holds as is: printable ASCII
// and UTF-8 bytes, except ':' (the separator).
func idByte(c byte) bool { return c >= 0x20 && c != 0x7f && c != ':' }

// msgID is the Nats-Msg-Id of p under the uniqueness key unique: the
// measurement, then the value of each key name, each escaped (':', '%' and
// control characters as %XX) and joined by ':':
//
//	trades:binance:spot:BTCUSDT:123456789
//
// A name is the tag with that key, else the field, else for "time" the
// event time in Unix nanoseconds. Field values are written as decimal
// integers (ints, uints), strconv's shortest float, the string itself, or
// true/false. It returns "" (no id: the message is stored however often
// it is sent) when unique is empty or p lacks one of the names, as a
// SQLite key column left NULL never conflicts.
func msgID(p *sluice.Point, unique []string) string {
	if len(unique) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(natsbus.Escape(p.Measurement, idByte))
	for _, name := range unique {
		b.WriteByte(':')
		if v, ok := p.Tag(name); ok {
			b.WriteString(natsbus.Escape(v, idByte))
			continue
		}
		if f, ok := p.Field(name); ok {
			b.WriteString(natsbus.Escape(formatValue(f), idByte))
			continue
		}
		if name == "time" {
			b.WriteString(strconv.FormatInt(p.Time.UnixNano(), 10))
			continue
		}
		return ""
	}
	return b.String()
}

func formatValue(v sluice.Value) string {
	switch v.Kind() {
	case sluice.KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case sluice.KindUint:
		return strconv.FormatUint(v.Uint(), 10)
	case sluice.KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case sluice.KindString:
		return v.Str()
	case sluice.KindBool:
		return strconv.FormatBool(v.Bool())
	}
	return ""
}
