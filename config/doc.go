// Package config loads, merges, defaults and validates Sluice's
// configuration: one main YAML file plus a drop-in directory of feed files,
// with environment overrides. Every problem names the file and key path,
// and every problem is reported at once.
//
// Values come from, lowest precedence first: the defaults (Default), the
// main file, whose top-level pipeline settings each sink may override;
// the feed files, which only add feeds; and SLUICE_* environment
// variables, which override any key. sluice.example.yaml documents every
// key. No I/O happens beyond reading the files named by the config.
//
// # Sink types
//
// The package names no sink. The caller passes the sink types a config
// may name (SinkTypes; the agent passes sinks/all's), each as a function
// returning a pointer to its config struct holding its defaults. The
// struct's tags declare the keys of a sink section of that type, once:
//
//	type Config struct {
//		URL       string        `config:"url,required" doc:"base URL of the server"`
//		Token     string        `config:"token,empty,secret" doc:"API token"`
//		TokenFile string        `config:"token_file,path=config_dir,secretfile=token" doc:"a file holding the token"`
//		Timeout   time.Duration `config:"timeout" doc:"timeout of one request"`
//		TLS       TLS           `config:"tls" doc:"client TLS"`
//	}
//
// A field's type gives its key's type: string, int or int64 (positive),
// bool, time.Duration (positive, written "500ms"), []string, or a struct
// (a nested section). The first item of the `config` tag is the key;
// then, as needed:
//
//   - required: the key must be present.
//   - empty: a string may be "" (otherwise it must not be).
//   - zero: an int or a duration may be 0.
//   - oneof=a|b|c: a string must be one of these.
//   - secret: the value is never shown: not quoted in an error, replaced
//     by Redaction in String and Redacted, listed by SecretValues.
//   - path=config_dir or path=data_dir: a file path, made absolute
//     relative to the main file's directory or to data_dir.
//   - secretfile=KEY: the file this key names holds the value of the
//     secret key KEY of the same section. It is read at load (trimmed, at
//     most MaxTokenFileBytes), so an unreadable or empty file is a config
//     error; setting both keys is one too.
//
// The doc tag says what the key does; a test checks that every key of
// every sink type has one, and that sluice.example.yaml shows it. Any
// string holding "://" is printed through redact.URL and its secrets are
// listed by SecretValues, whatever its tags.
//
// A sink section also takes "type" and any pipeline key, as an override,
// so a type may not use those keys. The loader decodes the section over
// the defaults, resolves paths and reads secret files, then calls two
// optional methods of the struct (found by type assertion):
//
//	Complete(set func(key string) bool) // defaults that depend on other keys
//	Validate() error                    // what the key types alone do not check
//
// A third optional method gives the type pipeline defaults of its own,
// as the keys and values a section would set (a live feed's sink drops
// what it cannot send at once rather than hold the feeds back):
//
//	PipelineDefaults() map[string]any   // {"when_full": "drop_oldest", "max_buffer_bytes": 8 << 20}
//
// They come over the top-level pipeline settings for sinks of that type,
// and the sink's own keys over them; a max_buffer_bytes given this way
// counts as set (the sink takes no share of buffer.max_bytes).
//
// Validate returns every problem, joined with errors.Join. An error with
// a Field() (key, msg string) method, such as *sinks.FieldError, is
// reported at that key ("tls.key_file" is sinks.NAME.tls.key_file) with
// its file; any other at the sink. A key the loader has already reported
// on is not reported again.
//
// # Why no koanf
//
// The package used to read files through koanf. It no longer does: the
// package already does what koanf's merging would (a drop-in file may
// only add feeds, and a name defined twice is an error naming both files;
// environment variables take the "__" path syntax and keep their origin,
// so an error names the variable and never quotes its value; every key
// knows which file it came from). Left for koanf was a call to
// yaml.Unmarshal and a decode through mapstructure of values the walker
// has already checked and typed, which is an assignment. Dropping it took
// eight modules out of go.mod (four of koanf's, mapstructure, and three
// they pulled in), and put the key names in one tag that the schema, the
// decoder and the renderer all read.
package config
