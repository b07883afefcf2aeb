// Package micro holds micro-benchmarks of the hot stages that have no
// benchmark next to their code (the plugin→agent hop per batch size,
// pipeline normalize, buffer append, the direct point codec against the
// protobuf runtime). Run them with
//
//	go test ./bench/micro -run '^$' -bench . -benchmem
package micro
