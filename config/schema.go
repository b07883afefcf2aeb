package config

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	kindSink    // a sink: keys depend on its type (see sinkTypes)
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
	doc      string           // what the key does (sink types' keys)
	// secretFiles maps a kindSection's keys that name a secret file to
	// the key the file holds the value of (token_file: token).
	secretFiles map[string]string
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

var feedSpec = section(map[string]*spec{
	"plugin":         {kind: kindString, check: checkPluginName},
	"sinks":          {kind: kindList, elem: str},
	"config":         {kind: kindFree},
	"queue_size":     posInt,
	"batch_size":     posInt,
	"flush_interval": duration,
	"replicas":       posInt,
	"gomaxprocs":     zeroOrPosInt,
}, "plugin", "sinks")

var feedsSpec = named("feed", feedSpec)

var rootSpec = section(map[string]*spec{
	"data_dir":         str,
	"plugin_dir":       str,
	"feeds_dir":        {kind: kindString, empty: true},
	"shutdown_timeout": duration,
	"cluster":          clusterSpec,
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

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
