// Package pointcodec is the one encoding of points: the source.v1 Batch
// message, written and read directly with protowire rather than through
// the protobuf runtime. The plugin SDK sends and receives batches with it
// and the agent's disk buffer stores each entry's points with it, so the
// bytes on the wire and on disk are the same bytes, and both are exactly
// what the protobuf runtime writes for the same message.
package pointcodec
