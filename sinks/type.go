package sinks

import (
	"fmt"
	"log/slog"
)

// Type is one kind of sink: the name a sink's `type:` key gives, the
// config its section holds, and how to build it from that config. A sink
// package declares its Type with Define; sinks/all lists every Type the
// agent is built with, and the config loader learns the keys of each
// type's section from its config struct (see the config package).
type Type struct {
	// Name is what `type:` says: "sqlite".
	Name string
	// NewConfig returns a pointer to a new config struct holding the
	// type's defaults. The loader decodes the sink's section over it.
	NewConfig func() any
	// New builds a sink from what NewConfig returned, once the loader has
	// filled and checked it. Like every sink constructor it has no side
	// effects.
	New func(cfg any, log *slog.Logger) (Sink, error)
}

// Define makes the Type of a sink package from its name, a function
// returning its default config, and its constructor:
//
//	var Type = sinks.Define("sqlite", DefaultConfig, New)
//
// C is a struct whose fields' `config` tags name the section's keys (see
// the config package for the tags). Optional methods on *C, found by type
// assertion:
//
//	Validate() error                  // problems, as *FieldError values joined with errors.Join
//	Complete(set func(key string) bool) // defaults that depend on other keys; set reports what the file set
func Define[C any, S Sink](name string, defaults func() C, build func(C, *slog.Logger) S) Type {
	return Type{
		Name: name,
		NewConfig: func() any {
			c := defaults()
			return &c
		},
		New: func(cfg any, log *slog.Logger) (Sink, error) {
			c, ok := cfg.(*C)
			if !ok {
				return nil, fmt.Errorf("sink type %s: config is a %T, want a %T", name, cfg, c)
			}
			return build(*c, log), nil
		},
	}
}

// Types is a set of sink types; names are unique.
type Types []Type

// Lookup returns the type of this name.
func (ts Types) Lookup(name string) (Type, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Type{}, false
}

// Configs maps each type's name to its NewConfig: what the config loader
// takes to know the sink types.
func (ts Types) Configs() map[string]func() any {
	m := make(map[string]func() any, len(ts))
	for _, t := range ts {
		m[t.Name] = t.NewConfig
	}
	return m
}

// FieldError is a problem with one key of a sink's config. Key is the
// key's path within the sink's section, dotted: "url", "tls.key_file".
// The loader reports it with the file and the full key
// ("sinks.influx.tls.key_file"). Msg must not quote a secret.
type FieldError struct {
	Key string
	Msg string
}

// FieldErrorf returns a *FieldError with a formatted message.
func FieldErrorf(key, format string, args ...any) *FieldError {
	return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key and the message; the config loader looks for this
// method, so that it needs to import no sink package.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }
