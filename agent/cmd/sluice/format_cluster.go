package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/agent/cluster"
)

// formatCluster writes, in cluster mode, the agent's standing in its
// cluster and who holds each feed.
func formatCluster(w io.Writer, cs *cluster.Status, now time.Time) {
	if cs == nil {
		return
	}
	fmt.Fprintf(w, "cluster %s: agent %s, %s; agents: %s; lease TTL %s; leases acquired %d, released %d, lost %d\n",
		printable(cs.Cluster), printable(cs.Agent), printable(string(cs.State)), printable(orDash(strings.Join(cs.Agents, ", "))),
		seconds(cs.LeaseTTLSeconds), cs.Changes[cluster.ChangeAcquired], cs.Changes[cluster.ChangeReleased], cs.Changes[cluster.ChangeLost])
	if cs.Error != "" {
		fmt.Fprintf(w, "  %s\n", printable(oneLine(cs.Error)))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEED\tREPLICA\tHOLDER\tLEASE\tSINCE")
	for _, l := range cs.Leases {
		holder := orDash(l.Holder)
		if l.Holder == cs.Agent && l.Holder != "" {
			holder += " (this agent)"
		}
		since := "-"
		if !l.Since.IsZero() {
			since = seconds(max(now.Sub(l.Since).Seconds(), 0)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(l.Feed), strconv.Itoa(l.Replica), printable(holder), printable(l.State), since)
	}
	if len(cs.Leases) == 0 {
		fmt.Fprintln(tw, "(no feeds)")
	}
	tw.Flush()
	fmt.Fprintln(w)
}
