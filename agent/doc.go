// Package agent is the daemon: it opens the sinks, runs one supervised
// plugin process per feed, routes each feed's batches through the pipeline
// to its sinks, serves status, metrics, reload and tap over HTTP (on a TCP
// listener and a unix socket; access.go says who may use what), applies
// config reloads to the running feeds, and shuts all of it down in order.
//
// Agent.Run opens its units against the flow and closes them with it,
// each unit's lifecycle documented on its type: the disk buffer
// (buffer.go), the outputs (outputSet, outputs.go), the HTTP API
// (apiServer, server.go), then the feeds (feedSet, feeds.go), whose
// supervisors (feed, feed.go) start plugin processes through a launcher
// (launcher.go). A reload (reload.go) is a plan, computed by planReload
// from the running config and the new one, that the feed set applies.
// In cluster mode (cluster.go) the feed set runs only the feeds this
// agent holds a lease for, as agent/cluster's Manager decides.
package agent
