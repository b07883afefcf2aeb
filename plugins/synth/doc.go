// Package synth is a synthetic source: deterministic points at a chosen
// rate, for trying Sluice without a network and for the agent's tests.
// It is also the example of a source plugin: synth.go is all of its SDK
// side (config, resume, run), generator.go makes the points.
package synth
