package testredis

import "testing"

func TestStart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}

// A server killed is gone from its address, and started again answers
// there.
func TestKillAndStartAgain(t *testing.T) {
	s := Start(t)
	s.Kill()
	if err := ping(s.Addr); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Start()
	if err := ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}
