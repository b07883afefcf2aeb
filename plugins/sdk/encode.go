package sdk

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice"
	pb "github.com/sluicehq/sluice/plugins/sdk/sourcev1"
)

// MarshalPoints appends the wire encoding of points (a source.v1 Batch
// holding only points) to dst. The agent's disk buffer stores points this
// way, so one encoding serves the wire and the disk.
func MarshalPoints(dst []byte, points []sluice.Point) ([]byte, error) {
	return proto.MarshalOptions{}.MarshalAppend(dst, batchToPB(points, 0, nil))
}

// UnmarshalPoints decodes what MarshalPoints wrote.
func UnmarshalPoints(b []byte) ([]sluice.Point, error) {
	var in pb.Batch
	if err := proto.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode points: %w", err)
	}
	out, invalid, err := batchFromPB(&in)
	if invalid > 0 {
		return nil, fmt.Errorf("decode points: %d undecodable: %w", invalid, err)
	}
	return out.Points, nil
}
