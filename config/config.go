package config

import (
	"time"
)

// Config is the whole, merged configuration.
type Config struct {
	DataDir   string `config:"data_dir"`
	PluginDir string `config:"plugin_dir"`
	FeedsDir  string `config:"feeds_dir"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM/SIGINT.
	ShutdownTimeout time.Duration `config:"shutdown_timeout"`

	HTTP     HTTP     `config:"http"`
	Log      Log      `config:"log"`
	Pipeline Pipeline `config:"pipeline"`
	Limits   Limits   `config:"limits"`
	Buffer   Buffer   `config:"buffer"`
	Restart  Restart  `config:"restart"`

	// Plugins pins plugin binaries by name (the part after sluice-source-).
	Plugins map[string]Plugin `config:"plugins"`
	Sinks   map[string]Sink   `config:"sinks"`
	Feeds   map[string]Feed   `config:"feeds"`

	// Cluster, when set, makes this agent one of a cluster that divides
	// the feeds among its agents (see Cluster); nil runs every feed here.
	Cluster *Cluster `config:"cluster"`

	// File is the main config file this was loaded from.
	File string `config:"-"`
	// Warnings are problems that do not stop the agent, such as SLUICE_*
	// variables that name no config key and were ignored.
	Warnings []string `config:"-"`

	src *source // for ReloadFeeds
}

// HTTP is the agent's HTTP API: a TCP listener, open for the read-only
// endpoints, and a unix socket serving every endpoint to local operators.
type HTTP struct {
	// Listen is the TCP listener's host:port.
	Listen string `config:"listen"`
	// Socket is the unix socket's path (mode 0660); "" serves none.
	Socket string `config:"socket"`
	// TokenFile holds a bearer token. Without one, TCP serves only the
	// read-only endpoints; with one, every TCP endpoint but /healthz and
	// /readyz takes (and needs) the token, reload and tap included.
	TokenFile string `config:"token_file"`
	// AllowedHosts are the names, besides localhost and loopback
	// addresses, that a request's Host header may give.
	AllowedHosts []string `config:"allowed_hosts"`
	// MaxTapClients bounds the /api/v1/tap streams served at once.
	MaxTapClients int `config:"max_tap_clients"`
}

// Log sets the agent's own logging.
type Log struct {
	Level  string `config:"level"`  // debug | info | warn | error
	Format string `config:"format"` // text | json
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
	BatchSize     int           `config:"batch_size"`
	FlushInterval time.Duration `config:"flush_interval"`
	// MaxBufferBytes bounds the bytes of the disk buffer that may wait
	// for this sink; past it WhenFull decides. 0 (the default) gives the
	// sink an equal share of what Buffer.MaxBytes leaves.
	MaxBufferBytes int64         `config:"max_buffer_bytes"`
	WhenFull       WhenFull      `config:"when_full"`
	RetryInitial   time.Duration `config:"retry_initial"`
	RetryMax       time.Duration `config:"retry_max"`
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
	MaxBytes      int64         `config:"max_bytes"`
	Fsync         Fsync         `config:"fsync"`
	FsyncInterval time.Duration `config:"fsync_interval"`
	SegmentBytes  int64         `config:"segment_bytes"`
}

// Limits bound what a point may look like; points outside them are
// rejected by the pipeline (counted and logged, never fatal).
type Limits struct {
	MaxTags        int           `config:"max_tags"`
	MaxFields      int           `config:"max_fields"`
	MaxKeyLength   int           `config:"max_key_length"`
	MaxValueLength int           `config:"max_value_length"`
	MaxFuture      time.Duration `config:"max_future"` // event time later than now+MaxFuture is rejected
	// MaxMeasurements bounds the distinct measurements one feed may
	// write, and MaxColumns the distinct tags plus fields one feed may
	// give one measurement (a SQLite table and its columns): a remote
	// peer choosing names must not be able to create tables or columns
	// without bound.
	MaxMeasurements int `config:"max_measurements"`
	MaxColumns      int `config:"max_columns"`
	// MaxPluginMessageBytes caps one gRPC message from a plugin (a batch):
	// a larger one fails that plugin's stream, and the feed restarts with
	// backoff, rather than the agent buffering whatever a plugin sends.
	MaxPluginMessageBytes int `config:"max_plugin_message_bytes"`
}

// Restart is the plugin restart policy: capped exponential backoff with
// jitter, reset after the plugin has run healthily for ResetAfter.
type Restart struct {
	Initial    time.Duration `config:"initial"`
	Max        time.Duration `config:"max"`
	ResetAfter time.Duration `config:"reset_after"`
}

// Plugin pins a plugin binary.
type Plugin struct {
	SHA256 string `config:"sha256"`
}

// Sink is one named sink.
type Sink struct {
	Type     string   `config:"type"`
	Pipeline Pipeline `config:"-"` // resolved: sink overrides over top-level defaults
	// Options is the sink type's own config: the pointer its
	// SinkTypes function returned, with the sink's keys decoded over the
	// defaults it held, paths resolved, secret files read, and checked.
	Options any `config:"-"`
}

// Feed is one named feed: a plugin instance writing to some sinks.
type Feed struct {
	Plugin string         `config:"plugin"`
	Sinks  []string       `config:"sinks"`
	Config map[string]any `config:"config"` // handed to the plugin as JSON

	// Plugin-side batching and queue bound (see plugins/sdk).
	QueueSize     int           `config:"queue_size"`
	BatchSize     int           `config:"batch_size"`
	FlushInterval time.Duration `config:"flush_interval"`

	// Replicas is how many agents of a cluster run the feed at once
	// (active-active); without a cluster section it is not used.
	Replicas int `config:"replicas"`

	// GoMaxProcs is the GOMAXPROCS the plugin process is started with:
	// how many threads run its Go code at once. 0 leaves it to the Go
	// runtime (one per CPU). The default, 1, suits a source plugin, which
	// waits on its connections and parses one frame at a time: with one
	// P, handing a frame from one goroutine to the next wakes no other
	// thread (≈ 15 % of the Binance plugin's CPU, BENCHMARKS.md).
	GoMaxProcs int `config:"gomaxprocs"`

	// File is the file that defined this feed.
	File string `config:"-"`
}
