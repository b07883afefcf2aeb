package faults

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/testbin"
)

// Environment variables of the suite. The agent never sees them: agentEnv
// strips every SLUICE_* variable.
const (
	// envMode=full runs the long version (make test-faults); anything
	// else, or unset, the short one that `go test ./...` runs.
	envMode = "SLUICE_FAULTS"
	// envSeed fixes the random fault schedule, to replay a failed run.
	envSeed = "SLUICE_FAULTS_SEED"
	// envLogDir, when set, is a directory where each scenario's config
	// and complete agent log are kept, passed or failed.
	envLogDir = "SLUICE_FAULTS_LOGDIR"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// An integration suite: -short (make test-short) skips it, and
		// need not build the binaries.
		os.Exit(m.Run())
	}
	code := testbin.Main(m)
	if full() {
		printSummary(os.Stdout)
	}
	os.Exit(code)
}

func full() bool { return os.Getenv(envMode) == "full" }

// pick returns the short or the full value.
func pick[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

// seed is the fault schedule's seed: SLUICE_FAULTS_SEED, or the clock.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv(envSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSeed, v, err)
		}
		s = n
	}
	t.Logf("fault schedule seed %d (rerun with %s=%d)", s, envSeed, s)
	return s
}

// result is one sink's tally at the end of a scenario.
type result struct {
	Scenario string
	Sink     string
	// Generated counts the trades and aggregate trades the exchange
	// generated; for a sink under a drop policy also the feed_events
	// points the complete sink holds, since those are dropped too.
	Generated  int64
	Landed     int64 // distinct of those found in the sink
	Missing    int64 // Generated - Landed
	Duplicated int64 // rows beyond the first for one id
	Unexpected int64 // ids the exchange never generated
	Dropped    int64 // dropped and counted by the agent (status)
	Elapsed    time.Duration
}

var summary struct {
	mu   sync.Mutex
	rows []result
}

func record(rs ...result) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	summary.rows = append(summary.rows, rs...)
}

func formatResults(rs []result) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tsink\tgenerated\tlanded\tmissing\tduplicated\tdropped+counted\ttime\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Scenario, r.Sink, r.Generated, r.Landed,
			r.Missing, r.Duplicated, r.Dropped, r.Elapsed.Round(time.Second))
	}
	w.Flush()
	return b.String()
}

func printSummary(f *os.File) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if len(summary.rows) == 0 {
		return
	}
	slices.SortStableFunc(summary.rows, func(a, b result) int { return strings.Compare(a.Scenario, b.Scenario) })
	fmt.Fprintf(f, "\nfault-injection summary (%s=full)\n%s", envMode, formatResults(summary.rows))
}
