//go:build !unix

package driverbench

func cpuTime() int64 { return 0 }
