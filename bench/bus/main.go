// Command bus measures the bus path of scale-out (NATS JetStream): the
// real sluice binaries and a real nats-server process (built from this
// checkout and its go.mod) on loopback, with the synth source making the
// points where the exchange is not what is measured. Three parts:
//
//   - sink: a synth feed at a fixed rate into the nats sink, step by
//     step. Loss is the points generated against the messages the stream
//     holds (every point has a message id); lag is a message's stored
//     time against when the plugin made the point (its Sluice-Received
//     header), sampled over the stream; CPU per point of the agent, the
//     plugin and nats-server, each apart.
//     One more step records the simulated Binance exchange through the
//     binance plugin instead, and one more runs against a second
//     nats-server configured with sync_interval: always (an fsync per
//     write before the ack).
//   - source: a writer agent reads the last synth step's stream with the
//     nats source into SQLite, from the start; points/s from the feed
//     running to the last point committed, then every point checked in
//     SQLite once.
//   - failover: three agents in cluster mode share one synth feed into
//     the nats sink; the one holding it is killed -9; the time until
//     the feed runs on another agent, until that agent's first point
//     reaches the server, and until the first new point (not one the
//     dead holder had stored) is in the stream. Several trials.
//
// Figures, never assertions.
//
//	go run ./bench/bus                         # about 3.5 minutes
//	go run ./bench/bus -rates 20000 -duration 5s -trials 2 -lease-ttl 3s
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench/internal/harness"
)

func main() {
	var (
		rates    = flag.String("rates", "20000,40000,60000,80000", "sink steps: points per second, comma-separated")
		duration = flag.Duration("duration", 8*time.Second, "how long each sink step generates points")
		trials   = flag.Int("trials", 5, "failover trials (0: no failover part)")
		leaseTTL = flag.Duration("lease-ttl", 10*time.Second, "the cluster's lease_ttl in the failover part (the default is 10s)")
		syncRate = flag.Int("sync-always-rate", 2000, "one more sink step at this rate against a nats-server with sync_interval: always (0: none)")
		bnRate   = flag.Int("binance-rate", 20000, "one more sink step at this rate of trades from the simulated exchange through the binance plugin (0: none)")
		out      = flag.String("out", "", "also write the report to this file")
	)
	flag.Parse()
	log.SetFlags(0)
	var steps []int
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			log.Fatalf("-rates: %q is not a positive number", s)
		}
		steps = append(steps, r)
	}
	b := &bench{duration: *duration, leaseTTL: *leaseTTL, syncRate: *syncRate, binanceRate: *bnRate}
	rep, err := b.run(steps, *trials)
	if err != nil {
		log.Fatal(err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "# sluice benchmarks: bus (NATS JetStream)\n\n")
	fmt.Fprintf(&head, "date:    %s\n", b.began.UTC().Format(time.RFC3339))
	fmt.Fprintf(&head, "commit:  %s\n", harness.Commit())
	fmt.Fprintf(&head, "machine: %s\n", harness.Machine())
	fmt.Fprintf(&head, "load:    %s (1, 5, 15 min) at the start, %s at the end\n", b.load0, loadAvg())
	fmt.Fprintf(&head, "go:      %s; nats-server %s\n", runtime.Version(), natsVersion())
	fmt.Fprintf(&head, "command: go run ./bench/bus -rates %s -duration %s -binance-rate %d -sync-always-rate %d -trials %d -lease-ttl %s\n", *rates, *duration, *bnRate, *syncRate, *trials, *leaseTTL)
	fmt.Fprintf(&head, "took:    %s\n\n", time.Since(b.began).Round(time.Second))
	rep = head.String() + rep
	fmt.Print(rep)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(rep), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func natsVersion() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
