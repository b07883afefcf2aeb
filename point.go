package sluice

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Kind is the type of a field value.
type Kind uint8

// Field kinds. The zero Kind is invalid so that an unset value is caught.
const (
	KindInvalid Kind = iota
	KindFloat
	KindInt
	KindUint
	KindString
	KindBool
)

var kindNames = [...]string{"invalid", "float", "int", "uint", "string", "bool"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// ParseKind is the inverse of Kind.String for the valid kinds.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), nil
		}
	}
	return KindInvalid, fmt.Errorf("unknown field type %q (want float, int, uint, string or bool)", s)
}

// Value is a typed field value. It is a small value type: numbers are held
// in one word so that a point's fields need no allocation beyond the slice.
type Value struct {
	kind Kind
	num  uint64
	str  string
}

// Float, Int, Uint, String and Bool make values of each kind.
func Float(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }
func Int(i int64) Value     { return Value{kind: KindInt, num: uint64(i)} }
func Uint(u uint64) Value   { return Value{kind: KindUint, num: u} }
func String(s string) Value { return Value{kind: KindString, str: s} }
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.kind }

// Float, Int, Uint, Str and Bool return the value as that kind; they are
// only meaningful when Kind matches.
func (v Value) Float() float64 { return math.Float64frombits(v.num) }
func (v Value) Int() int64     { return int64(v.num) }
func (v Value) Uint() uint64   { return v.num }
func (v Value) Str() string    { return v.str }
func (v Value) Bool() bool     { return v.num != 0 }

// Any returns the value as float64, int64, uint64, string or bool.
func (v Value) Any() any {
	switch v.kind {
	case KindFloat:
		return v.Float()
	case KindInt:
		return v.Int()
	case KindUint:
		return v.Uint()
	case KindString:
		return v.str
	case KindBool:
		return v.Bool()
	}
	return nil
}

func (v Value) String() string { return fmt.Sprintf("%v(%v)", v.kind, v.Any()) }

// Equal reports whether two values have the same kind and content. NaN
// floats compare by bits, so a value is always equal to itself.
func (v Value) Equal(o Value) bool { return v == o }

// Tag is a key/value label on a point. Tags identify a series.
type Tag struct {
	Key, Value string
}

// Field is a named typed value on a point.
type Field struct {
	Key   string
	Value Value
}

// Point is one normalized observation: a measurement, its tags (sorted by
// key), its typed fields, the time the event happened and the time the
// source received it.
type Point struct {
	Measurement string
	Tags        []Tag
	Fields      []Field
	Time        time.Time
	Received    time.Time
}

// Tag returns the value of the tag with the given key.
func (p *Point) Tag(key string) (string, bool) {
	for _, t := range p.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// Field returns the field with the given key.
func (p *Point) Field(key string) (Value, bool) {
	for _, f := range p.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return Value{}, false
}

// SortTags puts the tags in key order, the order every sink relies on.
func (p *Point) SortTags() {
	if !slices.IsSortedFunc(p.Tags, compareTags) {
		slices.SortFunc(p.Tags, compareTags)
	}
}

func compareTags(a, b Tag) int { return strings.Compare(a.Key, b.Key) }

// Equal reports whether two points carry the same data.
func (p *Point) Equal(o *Point) bool {
	return p.Measurement == o.Measurement &&
		slices.Equal(p.Tags, o.Tags) &&
		slices.Equal(p.Fields, o.Fields) &&
		p.Time.Equal(o.Time) && p.Received.Equal(o.Received)
}

// Measurement describes what a source declares about one measurement it
// emits. Unique names the tags and fields that identify a point (for
// Binance trades: exchange, market, symbol, trade_id, time); the name
// "time" stands for the point's timestamp. A sink stores one point per
// key and a later point with the same key replaces the earlier one, so a
// replayed point lands on itself and updates of one candle replace each
// other. Empty Unique means every point is new.
type Measurement struct {
	Name   string
	Unique []string
}
