// Package pipeline is the agent's middle: it checks and normalizes points
// arriving from feeds, keeps them in the disk buffer (one write-ahead log
// per sink, bounded on disk, with a when_full policy), and runs one output
// per sink (batching and retries), counting everything.
package pipeline
