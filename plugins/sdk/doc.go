// Package sdk is the plugin boundary: the go-plugin/gRPC adapter for both
// sides of the source.v1 protocol. Plugin authors implement Source and call
// Serve; the agent uses Client. Batching inside the plugin and the bounded
// queue that keeps a plugin's read loop from ever blocking live here too.
package sdk
