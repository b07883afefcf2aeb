package testredis

import "testing"

func TestStart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}
