// Package pipeline is the agent's middle: it checks and normalizes points
// arriving from feeds, and runs one output per sink (a bounded buffer with
// a when_full policy, batching, and retries), counting everything.
package pipeline
