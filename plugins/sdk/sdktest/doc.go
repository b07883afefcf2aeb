// Package sdktest is the harness for source plugin authors: it runs a
// source in-process behind the real gRPC boundary (go-plugin's
// TestPluginGRPCConn, the SDK's server and the agent's client) and checks
// the plugin contract in one call (Check). Recorder is an sdk.Emitter for
// unit tests of a source's Run without the boundary.
package sdktest
