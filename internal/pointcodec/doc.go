// Package pointcodec is the one encoding of points: the source.v1 Batch
// message, written and read directly with protowire rather than through
// the protobuf runtime. The plugin SDK sends and receives batches with it
// and the agent's disk buffer stores each entry's points with it, so the
// bytes on the wire and on disk are the same bytes, and both are exactly
// what the protobuf runtime writes for the same message. That lets the
// agent store a plugin's points as they came (Batch.Raw) when its
// normalizer changed none of them, rather than encoding them again.
package pointcodec
