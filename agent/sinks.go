package agent

import (
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/influxdb"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

// newSink builds the sink a config names. The config loader has already
// checked the type and set the matching options.
func newSink(sc config.Sink, log *slog.Logger) (sinks.Sink, error) {
	switch {
	case sc.Type == "sqlite" && sc.SQLite != nil:
		return sqlite.New(*sc.SQLite, log), nil
	case sc.Type == "influxdb" && sc.InfluxDB != nil:
		return influxdb.New(*sc.InfluxDB, log), nil
	}
	return nil, fmt.Errorf("unknown sink type %q", sc.Type)
}
