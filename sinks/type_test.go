package sinks_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/sinks"
)

type memConfig struct {
	Name  string   `config:"name"`
	Items []string `config:"items"`
}

// memSink keeps what it is given; just enough of a sink to be built.
type memSink struct{ cfg memConfig }

func newMem(cfg memConfig, _ *slog.Logger) *memSink { return &memSink{cfg: cfg} }

func (s *memSink) Open(context.Context) error                          { return nil }
func (s *memSink) Declare(context.Context, []sluice.Measurement) error { return nil }
func (s *memSink) Write(context.Context, []sluice.Point) error         { return nil }
func (s *memSink) Close() error                                        { return nil }

func TestDefine(t *testing.T) {
	typ := sinks.Define("mem", func() memConfig { return memConfig{Name: "default", Items: []string{"a"}} }, newMem)

	// Each config is new: the loader may change one freely.
	first := typ.NewConfig().(*memConfig)
	first.Name = "changed"
	first.Items[0] = "changed"
	second := typ.NewConfig().(*memConfig)
	if second.Name != "default" || second.Items[0] != "a" {
		t.Errorf("a config changed the defaults: %+v", second)
	}

	s, err := typ.New(first, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := s.(*memSink); !ok || m.cfg.Name != "changed" {
		t.Errorf("New built %#v from %+v", s, first)
	}
	if _, err := typ.New(memConfig{}, nil); err == nil || !strings.Contains(err.Error(), "sink type mem: config is a sinks_test.memConfig, want a *sinks_test.memConfig") {
		t.Errorf("a config of the wrong type: %v", err)
	}
}

func TestTypes(t *testing.T) {
	mem := sinks.Define("mem", func() memConfig { return memConfig{} }, newMem)
	other := sinks.Define("other", func() memConfig { return memConfig{Name: "o"} }, newMem)
	ts := sinks.Types{mem, other}
	if got, ok := ts.Lookup("other"); !ok || got.Name != "other" {
		t.Errorf("Lookup(other) = %v, %v", got.Name, ok)
	}
	if _, ok := ts.Lookup("nope"); ok {
		t.Error("Lookup found a type not in the set")
	}
	configs := ts.Configs()
	if len(configs) != 2 || configs["other"]().(*memConfig).Name != "o" {
		t.Errorf("Configs = %v", configs)
	}
}

func TestFieldError(t *testing.T) {
	err := errors.Join(sinks.FieldErrorf("tls.key_file", "missing: %s is set", "cert_file"), errors.New("other"))
	var fe *sinks.FieldError
	if !errors.As(err, &fe) || fe.Key != "tls.key_file" || fe.Msg != "missing: cert_file is set" {
		t.Fatalf("FieldError = %#v", fe)
	}
	if k, m := fe.Field(); k != fe.Key || m != fe.Msg || fe.Error() != "tls.key_file: missing: cert_file is set" {
		t.Errorf("Field() = %q, %q; Error() = %q", k, m, fe.Error())
	}
}
