package sqlite

import (
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// Type is the SQLite sink type: `type: sqlite`.
var Type = sinks.Define("sqlite", DefaultConfig, New)

// Config is a SQLite sink's section of the config file (see the config
// package for the tags).
type Config struct {
	Path        string        `config:"path,path=data_dir" doc:"the database file; a relative path is taken relative to data_dir"`
	BusyTimeout time.Duration `config:"busy_timeout" doc:"how long a write waits for a lock another process holds before it fails and is retried"`
	// SeriesIndex adds, to each new table whose first point has tags, an
	// index on (tags..., time). Off by default: it is a third B-tree to
	// update on every row, and queries that filter on some of the tags
	// and a time range (the dashboards') use the time index instead.
	SeriesIndex bool `config:"series_index" doc:"give each new table an index on (its tags..., time) as well as the one on (time); for queries that filter on every tag"`
}

// DefaultConfig is the config a sink section that sets nothing gives.
func DefaultConfig() Config {
	return Config{Path: "sluice.db", BusyTimeout: defaultBusyTimeout}
}
