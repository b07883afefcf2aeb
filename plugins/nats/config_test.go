package nats

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/sdk"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		json string
		key  string
	}{
		{`{"stream": "S"}`, "url"},
		{`{"url": "nats://a:4222"}`, "stream"},
		{`{"url": "nats://a:4222", "stream": "a.b"}`, "stream"},
		{`{"url": "nats://a:4222", "stream": "S", "subjects": ["a.>.b"]}`, "subjects[0]"},
		{`{"url": "nats://a:4222", "stream": "S", "deliver": "last"}`, "deliver"},
		{`{"url": "nats://a:4222", "stream": "S", "user": "u", "password": "${env:}"}`, "password"},
		{`{"url": "nats://a:4222", "stream": "S", "token": "t", "nkey_file": "seed"}`, "nkey_file"},
		{`{"url": "nats://a:4222", "stream": "S", "streams": "x"}`, "streams"},
	}
	for _, tt := range tests {
		_, err := New().Configure(t.Context(), sdk.ConfigureRequest{Config: json.RawMessage(tt.json), ValidateOnly: true})
		ces, ok := err.(sdk.ConfigErrors)
		if !ok || len(ces) != 1 || ces[0].Key != tt.key {
			t.Errorf("%s: %v, want one error at %s", tt.json, err, tt.key)
		}
	}
	// Validating needs no server.
	ms, err := New().Configure(t.Context(), sdk.ConfigureRequest{Config: json.RawMessage(`{"url": "nats://127.0.0.1:1", "stream": "S"}`), ValidateOnly: true})
	if err != nil || ms != nil {
		t.Errorf("validate: %v, %v", ms, err)
	}
}

func TestPosition(t *testing.T) {
	p := position{Stream: "SLUICE", Created: time.Unix(1740830400, 5).UTC(), Seq: 42}
	got, err := decodePosition(p.encode())
	if err != nil || got.Stream != p.Stream || !got.Created.Equal(p.Created) || got.Seq != 42 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, err := decodePosition(nil); err != nil || got.Seq != 0 {
		t.Fatalf("nil: %+v, %v", got, err)
	}
	for _, bad := range []string{`{"v":2,"seq":1}`, `not json`} {
		if _, err := decodePosition([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
