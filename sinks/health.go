package sinks

// HealthReporter is a sink that can be down between writes: one that
// keeps a connection of its own, and skips points rather than holding
// them while the connection is lost (the live sink with Redis). Its
// writes succeed, so the pipeline alone would show it as ok; the agent
// asks Health when its status is read and shows a sink whose Health is
// not nil as failed, with the error as its last error, in status,
// /readyz and sluice_sink_failed, as it shows a sink whose writes fail.
//
// Health must be cheap and safe to call from any goroutine. Its error
// says what is wrong and since when, without secrets.
type HealthReporter interface {
	Health() error
}
