package pacedread

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection, the reading end
// paced, with its pauses counted instead of slept.
func pair(t *testing.T) (*Conn, net.Conn, *int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dialed, err := Dialer(Gap)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	w := <-accepted
	t.Cleanup(func() { dialed.Close(); w.Close() })
	c := dialed.(*Conn)
	var mu sync.Mutex
	pauses := new(int)
	c.sleep = func(d time.Duration) {
		if d != Gap {
			t.Errorf("paused %v, want %v", d, Gap)
		}
		mu.Lock()
		*pauses++
		mu.Unlock()
	}
	return c, w, pauses
}

// Data already waiting: the read after one that found it pauses first.
func TestBusySocketPauses(t *testing.T) {
	r, w, pauses := pair(t)
	buf := make([]byte, 1<<16)
	for range 20 { // each round: data waiting, then two reads
		if _, err := w.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // let it reach the reader's socket
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("next"))
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A read that finds data waiting takes microseconds; allow a few to
	// have been descheduled long enough to count as having waited.
	if *pauses < 10 {
		t.Fatalf("%d pauses in 20 reads that followed one finding data waiting, want most", *pauses)
	}
}

// A read that had to wait for its data is followed by an immediate one:
// a quiet stream's frames are not delayed.
func TestQuietSocketDoesNotPause(t *testing.T) {
	r, w, pauses := pair(t)
	buf := make([]byte, 1<<16)
	for range 5 {
		go func() {
			time.Sleep(20 * time.Millisecond) // the reader is blocked by then
			w.Write([]byte("frame"))
		}()
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if *pauses != 0 {
		t.Fatalf("%d pauses after reads that waited for their data, want 0", *pauses)
	}
}

// A read that fills the buffer is followed by an immediate one: the
// socket holds more than the reader takes at once.
func TestFullBufferDoesNotPause(t *testing.T) {
	r, w, pauses := pair(t)
	if _, err := w.Write(bytes.Repeat([]byte("x"), 64)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	small := make([]byte, 8)
	for range 4 {
		if n, err := r.Read(small); err != nil || n != len(small) {
			t.Fatalf("read %d, %v", n, err)
		}
	}
	if *pauses != 0 {
		t.Fatalf("%d pauses after full reads, want 0", *pauses)
	}
}

// Everything written arrives, in order, with real pauses.
func TestStreamArrivesWhole(t *testing.T) {
	r, w, _ := pair(t)
	r.sleep = time.Sleep
	var want bytes.Buffer
	go func() {
		for i := range 2000 {
			msg := []byte{byte(i), byte(i >> 8), 'a', 'b', 'c'}
			w.Write(msg)
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		w.Close()
	}()
	for i := range 2000 {
		want.Write([]byte{byte(i), byte(i >> 8), 'a', 'b', 'c'})
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d, or out of order", len(got), want.Len())
	}
}
