// Package agent is the daemon: it opens the sinks, runs one supervised
// plugin process per feed, routes each feed's batches through the pipeline
// to its sinks, serves status, metrics and tap over HTTP, applies config
// reloads to the running feeds, and shuts all of it down in order.
package agent
