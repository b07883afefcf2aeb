// Package all lists the sink types the agent is built with. Adding a sink
// type is one package under sinks/ that declares its Type, and one line
// here.
package all

import (
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/influxdb"
	"github.com/sluicehq/sluice/sinks/live"
	"github.com/sluicehq/sluice/sinks/nats"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

// Types are the sink types a config may name.
var Types = sinks.Types{
	sqlite.Type,
	influxdb.Type,
	nats.Type,
	live.Type,
}
