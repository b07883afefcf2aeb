// Package config loads, merges, defaults and validates Sluice's
// configuration: one main YAML file plus a drop-in directory of feed files,
// with environment overrides. Every problem names the file and key path.
//
// Values come from, lowest precedence first: the defaults (Default), the
// main file, whose top-level pipeline settings each sink may override;
// the feed files, which only add feeds; and SLUICE_* environment
// variables, which override any key. sluice.example.yaml documents every
// key. No I/O happens beyond reading the files named by the config.
package config

import (
	"time"

	natssink "github.com/sluicehq/sluice/sinks/nats"
)

// Config is the whole, merged configuration.
type Config struct {
	DataDir   string `koanf:"data_dir"`
	PluginDir string `koanf:"plugin_dir"`
	FeedsDir  string `koanf:"feeds_dir"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM/SIGINT.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`

	HTTP     HTTP     `koanf:"http"`
	Log      Log      `koanf:"log"`
	Pipeline Pipeline `koanf:"pipeline"`
	Limits   Limits   `koanf:"limits"`
	Buffer   Buffer   `koanf:"buffer"`
	Restart  Restart  `koanf:"restart"`

	// Plugins pins plugin binaries by name (the part after sluice-source-).
	Plugins map[string]Plugin `koanf:"plugins"`
	Sinks   map[string]Sink   `koanf:"sinks"`
	Feeds   map[string]Feed   `koanf:"feeds"`

	// File is the main config file this was loaded from.
	File string `koanf:"-"`

	src *source // for ReloadFeeds
}

// HTTP is the agent's HTTP API: a TCP listener, open for the read-only
// endpoints, and a unix socket serving every endpoint to local operators.
type HTTP struct {
	// Listen is the TCP listener's host:port.
	Listen string `koanf:"listen"`
	// Socket is the unix socket's path (mode 0660); "" serves none.
	Socket string `koanf:"socket"`
	// TokenFile holds a bearer token. Without one, TCP serves only the
	// read-only endpoints; with one, every TCP endpoint but /healthz and
	// /readyz takes (and needs) the token, reload and tap included.
	TokenFile string `koanf:"token_file"`
	// AllowedHosts are the names, besides localhost and loopback
	// addresses, that a request's Host header may give.
	AllowedHosts []string `koanf:"allowed_hosts"`
	// MaxTapClients bounds the /api/v1/tap streams served at once.
	MaxTapClients int `koanf:"max_tap_clients"`
}

// Log sets the agent's own logging.
type Log struct {
	Level  string `koanf:"level"`  // debug | info | warn | error
	Format string `koanf:"format"` // text | json
}

// WhenFull names what a sink's buffer does when it is full.
type WhenFull string

const (
	Block      WhenFull = "block"
	DropOldest WhenFull = "drop_oldest"
	DropNewest WhenFull = "drop_newest"
)

// Pipeline holds the per-sink output settings. The top-level `pipeline:`
// gives defaults; each sink may override any of them under its own name.
type Pipeline struct {
	BatchSize     int           `koanf:"batch_size"`
	FlushInterval time.Duration `koanf:"flush_interval"`
	// MaxBufferBytes bounds the bytes of the disk buffer that may wait
	// for this sink; past it WhenFull decides. 0 (the default) gives the
	// sink an equal share of what Buffer.MaxBytes leaves.
	MaxBufferBytes int64         `koanf:"max_buffer_bytes"`
	WhenFull       WhenFull      `koanf:"when_full"`
	RetryInitial   time.Duration `koanf:"retry_initial"`
	RetryMax       time.Duration `koanf:"retry_max"`
}

// Fsync is how often the disk buffer forces its writes to stable storage.
type Fsync string

const (
	FsyncAlways   Fsync = "always"
	FsyncInterval Fsync = "interval"
	FsyncNever    Fsync = "never"
)

// Buffer configures the disk buffer (write-ahead log) in data_dir/buffer
// that every batch passes through on its way to the sinks.
type Buffer struct {
	// MaxBytes bounds the whole buffer on disk: the sinks'
	// max_buffer_bytes must fit in it, and sinks that set none share what
	// is left equally.
	MaxBytes      int64         `koanf:"max_bytes"`
	Fsync         Fsync         `koanf:"fsync"`
	FsyncInterval time.Duration `koanf:"fsync_interval"`
	SegmentBytes  int64         `koanf:"segment_bytes"`
}

// Limits bound what a point may look like; points outside them are
// rejected by the pipeline (counted and logged, never fatal).
type Limits struct {
	MaxTags        int           `koanf:"max_tags"`
	MaxFields      int           `koanf:"max_fields"`
	MaxKeyLength   int           `koanf:"max_key_length"`
	MaxValueLength int           `koanf:"max_value_length"`
	MaxFuture      time.Duration `koanf:"max_future"` // event time later than now+MaxFuture is rejected
	// MaxMeasurements bounds the distinct measurements one feed may
	// write, and MaxColumns the distinct tags plus fields one feed may
	// give one measurement (a SQLite table and its columns): a remote
	// peer choosing names must not be able to create tables or columns
	// without bound.
	MaxMeasurements int `koanf:"max_measurements"`
	MaxColumns      int `koanf:"max_columns"`
	// MaxPluginMessageBytes caps one gRPC message from a plugin (a batch):
	// a larger one fails that plugin's stream, and the feed restarts with
	// backoff, rather than the agent buffering whatever a plugin sends.
	MaxPluginMessageBytes int `koanf:"max_plugin_message_bytes"`
}

// Restart is the plugin restart policy: capped exponential backoff with
// jitter, reset after the plugin has run healthily for ResetAfter.
type Restart struct {
	Initial    time.Duration `koanf:"initial"`
	Max        time.Duration `koanf:"max"`
	ResetAfter time.Duration `koanf:"reset_after"`
}

// Plugin pins a plugin binary.
type Plugin struct {
	SHA256 string `koanf:"sha256"`
}

// Sink is one named sink. Exactly one of the type-specific members is set,
// matching Type.
type Sink struct {
	Type     string    `koanf:"type"`
	Pipeline Pipeline  `koanf:"-"` // resolved: sink overrides over top-level defaults
	SQLite   *SQLite   `koanf:"-"`
	InfluxDB *InfluxDB `koanf:"-"`
	// NATS is the nats sink's own config (sinks/nats owns it).
	NATS *natssink.Config `koanf:"-"`
}

// SQLite configures the embedded SQLite sink.
type SQLite struct {
	Path        string        `koanf:"path"`         // default <data_dir>/sluice.db
	BusyTimeout time.Duration `koanf:"busy_timeout"` // default 5s
}

// InfluxDB configures the InfluxDB sink (v2 write API: 1.8 compat, 2.x, 3.x).
type InfluxDB struct {
	URL       string        `koanf:"url"`
	Org       string        `koanf:"org"`
	Bucket    string        `koanf:"bucket"` // 1.8: "database/retention_policy"
	Token     string        `koanf:"token"`
	TokenFile string        `koanf:"token_file"`
	Precision string        `koanf:"precision"` // ns | us | ms | s, default ns
	Gzip      bool          `koanf:"gzip"`      // default true, false for a loopback url
	Timeout   time.Duration `koanf:"timeout"`   // default 10s
	TLS       TLS           `koanf:"tls"`
}

// TLS is a client TLS setup.
type TLS struct {
	CAFile             string `koanf:"ca_file"`
	CertFile           string `koanf:"cert_file"`
	KeyFile            string `koanf:"key_file"`
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

// Feed is one named feed: a plugin instance writing to some sinks.
type Feed struct {
	Plugin string         `koanf:"plugin"`
	Sinks  []string       `koanf:"sinks"`
	Config map[string]any `koanf:"config"` // handed to the plugin as JSON

	// Plugin-side batching and queue bound (see plugins/sdk).
	QueueSize     int           `koanf:"queue_size"`
	BatchSize     int           `koanf:"batch_size"`
	FlushInterval time.Duration `koanf:"flush_interval"`

	// File is the file that defined this feed.
	File string `koanf:"-"`
}
