package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/natsbus"
	"github.com/sluicehq/sluice/internal/redact"
	natssink "github.com/sluicehq/sluice/sinks/nats"
)

// The schema says which keys exist, what type each holds and which values
// are allowed. The walker checks the parsed YAML against it before anything
// is decoded, so every problem is reported with its file and full key.

type kind uint8

const (
	kindString   kind = iota
	kindInt           // a positive integer
	kindDuration      // a positive Go duration: "100ms", "1m30s" (or 0, with zero)
	kindBool
	kindList    // a list of strings
	kindSection // a mapping with a fixed set of keys
	kindNamed   // a mapping of user-chosen names to elem
	kindSink    // a sink: keys depend on its type
	kindFree    // a mapping handed to a plugin unchecked
)

type spec struct {
	kind     kind
	keys     map[string]*spec // kindSection
	required []string         // kindSection: keys that must be present
	elem     *spec            // kindNamed, kindList
	what     string           // kindNamed: what a name names ("feed")
	oneOf    []string         // kindString: the allowed values
	empty    bool             // kindString: "" is allowed
	zero     bool             // kindDuration, kindInt: 0 is allowed
	secret   bool             // never show the value in a message
	// check returns a message when a string value is unacceptable.
	check func(s string) string
}

var (
	str      = &spec{kind: kindString}
	posInt   = &spec{kind: kindInt}
	duration = &spec{kind: kindDuration}
	// zeroOrDuration also takes 0 ("0", "0s") for "no wait".
	zeroOrDuration = &spec{kind: kindDuration, zero: true}
	boolean        = &spec{kind: kindBool}
	// zeroOrPosInt also takes 0, for "not set: derive it".
	zeroOrPosInt = &spec{kind: kindInt, zero: true}
)

func enum(values ...string) *spec {
	return &spec{kind: kindString, oneOf: values}
}

func section(keys map[string]*spec, required ...string) *spec {
	return &spec{kind: kindSection, keys: keys, required: required}
}

func named(what string, elem *spec) *spec {
	return &spec{kind: kindNamed, what: what, elem: elem}
}

var pipelineSpec = section(map[string]*spec{
	"batch_size":       posInt,
	"flush_interval":   zeroOrDuration,
	"max_buffer_bytes": zeroOrPosInt,
	"when_full":        enum(string(Block), string(DropOldest), string(DropNewest)),
	"retry_initial":    duration,
	"retry_max":        duration,
})

var sqliteSpec = section(map[string]*spec{
	"path":         str,
	"busy_timeout": duration,
})

var influxSpec = section(map[string]*spec{
	"url":        {kind: kindString, check: checkURL},
	"org":        {kind: kindString, empty: true},
	"bucket":     str,
	"token":      {kind: kindString, empty: true, secret: true},
	"token_file": str,
	"precision":  enum("ns", "us", "ms", "s"),
	"gzip":       boolean,
	"timeout":    duration,
	"tls": section(map[string]*spec{
		"ca_file":              str,
		"cert_file":            str,
		"key_file":             str,
		"server_name":          str,
		"insecure_skip_verify": boolean,
	}),
}, "url", "bucket")

// natsSpec is the walker's view of natssink.Config; the sink's Validate
// checks the values further (see decode).
var natsSpec = section(map[string]*spec{
	"url":              {kind: kindString, check: natsbus.CheckURL},
	"stream":           {kind: kindString, check: natssink.CheckStreamName},
	"subject":          str,
	"create_stream":    boolean,
	"stream_subjects":  {kind: kindList, elem: str},
	"stream_replicas":  posInt,
	"stream_storage":   enum("file", "memory"),
	"stream_max_age":   zeroOrDuration,
	"stream_max_bytes": zeroOrPosInt,
	"duplicate_window": duration,
	"max_in_flight":    posInt,
	"timeout":          duration,
	"user":             str,
	"password":         {kind: kindString, secret: true},
	"token":            {kind: kindString, secret: true},
	"credentials_file": str,
	"nkey_file":        str,
	"tls":              influxSpec.keys["tls"],
}, "url", "stream")

// sinkTypes holds the type-specific keys of each sink type. Every sink also
// takes "type" and any pipeline key as an override.
var sinkTypes = map[string]*spec{
	"sqlite":   sqliteSpec,
	"influxdb": influxSpec,
	"nats":     natsSpec,
}

var sinkTypeSpec = &spec{kind: kindString, check: func(s string) string {
	if _, ok := sinkTypes[s]; ok {
		return ""
	}
	return fmt.Sprintf("must be a known sink type (%s), got %q", strings.Join(sortedKeys(sinkTypes), ", "), s)
}}

var feedSpec = section(map[string]*spec{
	"plugin":         {kind: kindString, check: checkPluginName},
	"sinks":          {kind: kindList, elem: str},
	"config":         {kind: kindFree},
	"queue_size":     posInt,
	"batch_size":     posInt,
	"flush_interval": duration,
}, "plugin", "sinks")

var feedsSpec = named("feed", feedSpec)

var rootSpec = section(map[string]*spec{
	"data_dir":         str,
	"plugin_dir":       str,
	"feeds_dir":        {kind: kindString, empty: true},
	"shutdown_timeout": duration,
	"http": section(map[string]*spec{
		"listen":          {kind: kindString, check: checkListen},
		"socket":          {kind: kindString, empty: true},
		"token_file":      {kind: kindString, empty: true},
		"allowed_hosts":   {kind: kindList, elem: &spec{kind: kindString, check: checkHostName}},
		"max_tap_clients": posInt,
	}),
	"log": section(map[string]*spec{
		"level":  enum("debug", "info", "warn", "error"),
		"format": enum("text", "json"),
	}),
	"pipeline": pipelineSpec,
	"limits": section(map[string]*spec{
		"max_tags":                 posInt,
		"max_fields":               posInt,
		"max_key_length":           posInt,
		"max_value_length":         posInt,
		"max_future":               duration,
		"max_measurements":         posInt,
		"max_columns":              posInt,
		"max_plugin_message_bytes": posInt,
	}),
	"buffer": section(map[string]*spec{
		"max_bytes":      posInt,
		"fsync":          enum(string(FsyncAlways), string(FsyncInterval), string(FsyncNever)),
		"fsync_interval": duration,
		"segment_bytes":  posInt,
	}),
	"restart": section(map[string]*spec{
		"initial":     duration,
		"max":         duration,
		"reset_after": duration,
	}),
	"plugins": named("plugin", section(map[string]*spec{
		"sha256": {kind: kindString, check: checkSHA256},
	}, "sha256")),
	"sinks": named("sink", &spec{kind: kindSink}),
	"feeds": feedsSpec,
})

// feedFileKeys are the only top-level keys a drop-in feeds file may hold.
var feedFileKeys = []string{"feeds"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validName reports whether s may name a feed, sink or plugin. Names end up
// in file names, metric labels and log keys, so they stay plain.
func validName(s string) bool {
	return nameRE.MatchString(s) && strings.Trim(s, ".") != ""
}

const nameRule = "use only letters, digits, '_', '.' and '-'"

func checkPluginName(s string) string {
	if validName(s) {
		return ""
	}
	return fmt.Sprintf("invalid plugin name %q: %s", s, nameRule)
}

func checkSHA256(s string) string {
	if len(s) == 64 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" {
		return ""
	}
	return fmt.Sprintf("must be 64 hexadecimal characters (a SHA-256 digest), got %q", s)
}

func checkListen(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr == nil && n >= 0 && n <= 65535 {
			return ""
		}
	}
	return fmt.Sprintf("must be host:port such as \"127.0.0.1:9273\", got %q", s)
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// The parser's message quotes the whole URL, which may hold a
		// password.
		return "must be an http:// or https:// URL, got an unparsable URL"
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return ""
	}
	return fmt.Sprintf("must be an http:// or https:// URL, got %q", redact.URL(s))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
