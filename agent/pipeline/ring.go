package pipeline

import "github.com/sluicehq/sluice"

// ring is a FIFO of points that grows on demand up to the buffer bound,
// so an idle sink does not hold buffer_size points of memory.
type ring struct {
	buf        []sluice.Point
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) push(p sluice.Point) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)%len(r.buf)] = p
	r.size++
}

func (r *ring) grow() {
	n := max(2*len(r.buf), 64)
	buf := make([]sluice.Point, n)
	for i := range r.size {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

func (r *ring) popFront() sluice.Point {
	p := r.buf[r.head]
	r.buf[r.head] = sluice.Point{}
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return p
}

// popInto moves up to n points from the front onto dst.
func (r *ring) popInto(dst []sluice.Point, n int) []sluice.Point {
	for ; n > 0 && r.size > 0; n-- {
		dst = append(dst, r.popFront())
	}
	return dst
}
