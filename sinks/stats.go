package sinks

// Stat is one figure a sink keeps about itself, beyond what the pipeline
// counts for every sink (written, dropped, retries): a live sink's
// clients, say. The agent shows a sink's stats in its status and exports
// each as the Prometheus metric sluice_sink_<Name>{sink="<sink name>"},
// with the Label, if any, as one more label.
type Stat struct {
	// Name is snake_case and starts with the sink type's name, so that
	// two types cannot export one metric: "live_clients".
	Name string `json:"name"`
	// Help says what it counts, for the metric's HELP line.
	Help string `json:"-"`
	// Counter is true for a total that only grows, false for a level.
	Counter bool `json:"counter,omitempty"`
	// Label and LabelValue split a stat into series ("reason", "slow").
	// A stat with a Label appears once per value; keep the values few.
	Label      string  `json:"label,omitempty"`
	LabelValue string  `json:"label_value,omitempty"`
	Value      float64 `json:"value"`
}

// StatsReporter is a sink that keeps stats of its own. The agent asks for
// them when its status is read; Stats must be cheap and safe to call from
// any goroutine, and return the same names and help on every call.
type StatsReporter interface {
	Stats() []Stat
}
