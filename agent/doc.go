// Package agent is the daemon: it opens the sinks, runs one supervised
// plugin process per feed, routes each feed's batches through the pipeline
// to its sinks, and shuts all of it down in order.
package agent
