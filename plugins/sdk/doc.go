// Package sdk is the plugin boundary: the go-plugin/gRPC adapter for both
// sides of the source.v1 protocol. Plugin authors implement Source and call
// Serve; the agent uses Client. Batching inside the plugin, the bounded
// queue that keeps a plugin's read loop from ever blocking, and the queue
// of events (gaps, reconnects, stale streams) that rides beside it live
// here too.
package sdk
