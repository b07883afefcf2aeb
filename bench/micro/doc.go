// Package micro holds micro-benchmarks of the hot stages that have no
// benchmark next to their code: pipeline normalize and buffer append.
// (The direct point codec against the protobuf runtime is measured in
// internal/pointcodec.) Run them with
//
//	go test ./bench/micro -run '^$' -bench . -benchmem
package micro
