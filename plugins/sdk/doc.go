// Package sdk is the plugin boundary: the go-plugin/gRPC adapter for both
// sides of the source.v1 protocol. Plugin authors implement Source (and
// the optional Resumer, Reconfigurer and Sampler, from which the SDK
// derives the plugin's capabilities), check their config with
// ConfigureRequest.Check, and call Serve; the agent uses Client. The
// bounded queue behind the Emitter, which keeps a plugin's read loop from
// ever blocking, the batching, and the queue of events (gaps, reconnects,
// stale streams) that rides beside the points live here too. Package
// sdktest checks a source against the contract.
package sdk
