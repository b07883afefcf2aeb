package sinks

import (
	"github.com/sluicehq/sluice"
)

// Keys holds the uniqueness key each measurement declared, for a sink
// that builds an id from it (the nats sink's message ids, the live
// sink's idempotency keys). Declare keeps the keys of ms; Of reads one
// as Write goes. The zero value is ready. It has no lock of its own: the
// sink calls it under the lock its Declare and Write already hold, so
// that a batch is built with one set of keys.
type Keys struct {
	m map[string][]string
}

// Declare records each measurement's key; one declared without a key
// forgets the one it had.
func (k *Keys) Declare(ms []sluice.Measurement) {
	if k.m == nil {
		k.m = make(map[string][]string)
	}
	for _, m := range ms {
		if len(m.Unique) > 0 {
			k.m[m.Name] = append([]string(nil), m.Unique...)
		} else {
			delete(k.m, m.Name)
		}
	}
}

// Of is the key measurement declared, nil if none. The caller must not
// change it.
func (k *Keys) Of(measurement string) []string { return k.m[measurement] }
