// Package agent is the daemon: it opens the sinks, runs one supervised
// plugin process per feed, routes each feed's batches through the pipeline
// to its sinks, serves status, metrics, reload and tap over HTTP (on a TCP
// listener and a unix socket; access.go says who may use what), applies
// config reloads to the running feeds, and shuts all of it down in order.
package agent
