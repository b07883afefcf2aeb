package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/pipeline"
	"github.com/sluicehq/sluice/sinks"
)

// formatStatus writes the agent's status as `sluice status` shows it: a
// table of feeds, a table of sinks, then the buffer and config notes.
func formatStatus(w io.Writer, st agent.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEED\tSTATE\tPID\tPOINTS\tPTS/S\tRESTARTS\tLAST BATCH\tLAST ERROR")
	for _, f := range st.Feeds {
		pid := "-"
		if f.Pid != 0 {
			pid = strconv.Itoa(f.Pid)
		}
		last := "never"
		if !f.LastBatch.IsZero() {
			last = seconds(f.LastBatchAge) + " ago"
		}
		state := string(f.State)
		if len(f.Stale) > 0 {
			state += ", stale"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n",
			printable(f.Name), printable(state), pid, f.Points, perSec(f.PointsPerSec), f.Restarts, last, orDash(oneLine(f.LastError)))
	}
	if len(st.Feeds) == 0 {
		fmt.Fprintln(tw, "(no feeds)")
	}
	tw.Flush()
	for _, f := range st.Feeds {
		for _, s := range f.Stale {
			fmt.Fprintf(w, "feed %s is stale: %s\n", f.Name, s)
		}
		if len(f.PluginDiscarded) > 0 {
			fmt.Fprintf(w, "feed %s: its plugin discarded %s\n", f.Name, counts(f.PluginDiscarded))
		}
	}
	fmt.Fprintln(w)
	formatCluster(w, st.Cluster, time.Now())
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSTATE\tBUFFERED\tWRITTEN\tDROPPED\tRETRIES\tPTS/S\tLAG\tLAST ERROR")
	for _, s := range st.Sinks {
		lag := "-"
		if s.LagSeconds != 0 {
			lag = seconds(s.LagSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d (%s)\t%d\t%s\t%d\t%s\t%s\t%s\n",
			printable(s.Name), printable(string(s.State)), s.BufferedPoints, bytesString(s.BufferedBytes), s.Written, dropped(s.Dropped),
			s.Retries, perSec(s.PointsPerSec), lag, orDash(oneLine(s.LastError)))
	}
	tw.Flush()
	for _, s := range st.Sinks {
		if len(s.Stats) > 0 {
			fmt.Fprintf(w, "sink %s: %s\n", printable(s.Name), printable(sinkStats(s.Stats)))
		}
	}
	fmt.Fprintf(w, "\ndisk buffer: %s of %s\n", bytesString(st.BufferBytes), bytesString(st.BufferMaxBytes))
	if r := st.BufferRepair; r != nil {
		fmt.Fprintf(w, "repaired when the agent started: %d records cut from a torn tail, %d lost to corruption, %d undecodable; damaged files done without: %s; copies kept: %s\n",
			r.TruncatedRecords, r.LostRecords, r.BadEntries, orDash(strings.Join(r.DamagedFiles, ", ")), orDash(strings.Join(r.Quarantined, ", ")))
		for name, n := range r.OrphanedSinks {
			fmt.Fprintf(w, "buffer holds %s for sink %s, which is not configured\n", bytesString(n), name)
		}
	}
	if len(st.RestartNeeded) > 0 {
		fmt.Fprintf(w, "restart needed to apply: %s\n", printable(strings.Join(st.RestartNeeded, ", ")))
	}
	if st.ConfigError != "" {
		fmt.Fprintln(w, "last reload rejected; the running config stays:")
		for _, l := range strings.Split(st.ConfigError, "\n") {
			fmt.Fprintln(w, "  "+printable(l))
		}
	}
}

// formatStatusLine is the one line `sluice run` prints every few seconds
// on a terminal.
func formatStatusLine(st agent.Status) string {
	up, stale := 0, 0
	var msgs, pts float64
	for _, f := range st.Feeds {
		if f.State == agent.FeedRunning {
			up++
		}
		if len(f.Stale) > 0 {
			stale++
		}
		msgs += f.BatchesPerSec
		pts += f.PointsPerSec
	}
	var written uint64
	var lag float64
	var buffered int64
	failing := 0
	for _, s := range st.Sinks {
		written += s.Written
		lag = max(lag, s.LagSeconds)
		buffered += s.BufferedPoints
		if s.State != pipeline.SinkOK {
			failing++
		}
	}
	line := fmt.Sprintf("feeds %d/%d up | %s msg/s %s pts/s | written %s | lag %s | buffered %s pts, %s",
		up, len(st.Feeds), compact(msgs), compact(pts), compact(float64(written)), lagString(lag),
		compact(float64(buffered)), bytesString(st.BufferBytes))
	if stale > 0 {
		line += fmt.Sprintf(" | %d feed(s) stale", stale)
	}
	if failing > 0 {
		line += fmt.Sprintf(" | %d sink(s) not ok", failing)
	}
	if st.ConfigError != "" {
		line += " | reload rejected"
	}
	if cs := st.Cluster; cs != nil {
		line += fmt.Sprintf(" | cluster %s: %s, %d held", cs.Cluster, cs.State, cs.Held)
	}
	return line
}

// sinkStats shows a sink's own figures on one line: each name without
// its type's prefix, in words ("clients 3, publications/s 850"), and
// those split by a label as "disconnects: slow 1, no_pong 2", leaving
// out zeros.
func sinkStats(stats []sinks.Stat) string {
	var parts []string
	labeled := make(map[string][]string)
	var order []string
	for _, st := range stats {
		name := st.Name
		if _, rest, ok := strings.Cut(name, "_"); ok {
			name = rest // the type's prefix
		}
		name = strings.TrimSuffix(name, "_total")
		bytes := strings.Contains(name, "bytes")
		perSecond := strings.HasSuffix(name, "_per_second")
		name = strings.ReplaceAll(strings.TrimSuffix(name, "_per_second"), "_", " ")
		if perSecond {
			name += "/s"
		}
		v := compact(st.Value)
		if bytes {
			v = bytesString(int64(st.Value))
		}
		if st.Label == "" {
			parts = append(parts, name+" "+v)
			continue
		}
		if st.Value == 0 {
			continue
		}
		if _, ok := labeled[name]; !ok {
			order = append(order, name)
		}
		labeled[name] = append(labeled[name], st.LabelValue+" "+v)
	}
	for _, name := range order {
		parts = append(parts, name+": "+strings.Join(labeled[name], ", "))
	}
	return strings.Join(parts, "; ")
}

func lagString(s float64) string {
	if s == 0 {
		return "-"
	}
	return seconds(s)
}

// seconds shows a duration in seconds at a precision fit for its size.
func seconds(s float64) string {
	switch {
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64) + "s"
	case s < 3600:
		return strconv.FormatFloat(s, 'f', 0, 64) + "s"
	case s < 48*3600:
		return strconv.FormatFloat(s/3600, 'f', 1, 64) + "h"
	}
	return strconv.FormatFloat(s/86400, 'f', 0, 64) + "d"
}

func perSec(r float64) string {
	if r == 0 {
		return "0"
	}
	return compact(r)
}

// compact shows a number in at most four digits and a k/M/G suffix.
func compact(v float64) string {
	one := func(v float64, suffix string) string {
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + suffix
	}
	switch {
	case v < 100:
		return one(v, "")
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v < 1e6:
		return one(v/1e3, "k")
	case v < 1e9:
		return one(v/1e6, "M")
	}
	return one(v/1e9, "G")
}

func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + suffix
}

// dropped is the total with the non-zero reasons, "0" if none.
func dropped(by map[pipeline.Reason]uint64) string {
	var total uint64
	var parts []string
	for _, r := range []pipeline.Reason{pipeline.ReasonBufferFull, pipeline.ReasonRejected, pipeline.ReasonSkipped, pipeline.ReasonUndecodable} {
		if n := by[r]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	if total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// counts is "reason n, ..." in the order of the reasons.
func counts(by map[string]uint64) string {
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s %d", r, by[r]))
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line, safe for a terminal.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

// formatReload says what a reload applied.
func formatReload(r agent.ReloadResult) string {
	var b strings.Builder
	b.WriteString("reloaded")
	list := func(what string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(&b, "; %s: %s", what, printable(strings.Join(names, ", ")))
		}
	}
	list("added", r.Added)
	list("removed", r.Removed)
	list("restarted", r.Restarted)
	if len(r.Added)+len(r.Removed)+len(r.Restarted) == 0 {
		b.WriteString("; no feed changed")
	}
	list("not applied until a restart", r.RestartNeeded)
	return b.String()
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc
}
