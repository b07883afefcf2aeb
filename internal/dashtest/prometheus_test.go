package dashtest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// agentMetrics are the metrics the agent exports, with their labels, for
// checking the dashboards' PromQL here. That the agent really exports
// every name the dashboards use is checked against the running agent's
// /metrics by TestReadinessAndMetrics in agent/.
var agentMetrics = map[string]metric{
	"sluice_feed_messages_total":          {labels: []string{"feed"}},
	"sluice_feed_points_total":            {labels: []string{"feed"}},
	"sluice_feed_rejected_total":          {labels: []string{"feed", "reason"}},
	"sluice_feed_plugin_dropped_total":    {labels: []string{"feed"}},
	"sluice_feed_restarts_total":          {labels: []string{"feed"}},
	"sluice_feed_up":                      {labels: []string{"feed"}},
	"sluice_feed_reconnects_total":        {labels: []string{"feed"}},
	"sluice_feed_gaps_total":              {labels: []string{"feed"}},
	"sluice_feed_backfilled_points_total": {labels: []string{"feed"}},
	"sluice_sink_points_written_total":    {labels: []string{"sink"}},
	"sluice_sink_points_dropped_total":    {labels: []string{"sink", "reason"}},
	"sluice_sink_retries_total":           {labels: []string{"sink"}},
	"sluice_sink_buffered_points":         {labels: []string{"sink"}},
	"sluice_sink_buffer_bytes":            {labels: []string{"sink"}},
	"sluice_sink_failed":                  {labels: []string{"sink"}},
	"sluice_lag_seconds":                  {labels: []string{"sink"}, histogram: true},
	// A live sink's own stats (sinks.StatsReporter).
	"sluice_sink_live_clients":                 {labels: []string{"sink"}},
	"sluice_sink_live_subscriptions":           {labels: []string{"sink"}},
	"sluice_sink_live_channels":                {labels: []string{"sink"}},
	"sluice_sink_live_history_points":          {labels: []string{"sink"}},
	"sluice_sink_live_publications_total":      {labels: []string{"sink"}},
	"sluice_sink_live_publication_bytes_total": {labels: []string{"sink"}},
	"sluice_sink_live_sent_messages_total":     {labels: []string{"sink"}},
	"sluice_sink_live_sent_bytes_total":        {labels: []string{"sink"}},
	"sluice_sink_live_duplicates_total":        {labels: []string{"sink"}},
	"sluice_sink_live_disconnects_total":       {labels: []string{"sink", "reason"}},
	"sluice_sink_live_refused_total":           {labels: []string{"sink", "reason"}},
}

type metric struct {
	labels    []string
	histogram bool
}

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"instance", "job"}

// series returns the labels of a series name the agent exports (a
// histogram's _bucket, _sum and _count), and whether it is one.
func series(name string) ([]string, bool) {
	if m, ok := agentMetrics[name]; ok && !m.histogram {
		return m.labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if m, ok := agentMetrics[strings.TrimSuffix(name, suffix)]; ok && m.histogram && strings.HasSuffix(name, suffix) {
			if suffix == "_bucket" {
				return append(slices.Clip(m.labels), "le"), true
			}
			return m.labels, true
		}
	}
	return nil, false
}

// promWords are the PromQL functions, aggregations and keywords the
// dashboards may use, and Grafana's label_values.
var promWords = []string{
	"sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "stddev", "group",
	"rate", "irate", "increase", "delta", "changes", "resets", "deriv", "histogram_quantile",
	"max_over_time", "min_over_time", "avg_over_time", "last_over_time", "absent", "clamp_min",
	"clamp_max", "abs", "vector", "scalar", "time",
	"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring)\s*\(([^)]*)\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	labelValues  = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
)

// checkPromQL reports every metric an expression uses that the agent does
// not export, every label it matches or groups on that those metrics do
// not carry, and words that are neither functions nor metrics. It is a
// lexical check, not a parser: enough for the dashboards' expressions.
func checkPromQL(expr string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Grafana's label_values(metric{...}, label) lists a label's values.
	var listed string
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr, listed = m[1], m[2]
	}
	expr = promString.ReplaceAllString(expr, `""`)
	expr = promRange.ReplaceAllString(expr, "")

	used := map[string][]string{} // series used → their labels
	use := func(name string) bool {
		labels, ok := series(name)
		if !ok {
			bad("%s is not a metric the agent exports", name)
			return false
		}
		used[name] = labels
		return true
	}
	var matched []string
	for _, m := range promSelector.FindAllStringSubmatch(expr, -1) {
		if m[1] == "" {
			bad("selector {%s} names no metric", m[2])
			continue
		}
		if !use(m[1]) {
			continue
		}
		labels, _ := series(m[1])
		for _, lm := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(labels, lm[1]) && !slices.Contains(targetLabels, lm[1]) {
				bad("%s has no label %q", m[1], lm[1])
			}
			matched = append(matched, lm[1])
		}
	}
	expr = promSelector.ReplaceAllString(expr, "$1")
	var grouped []string
	for _, m := range promGrouping.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				grouped = append(grouped, l)
			}
		}
	}
	expr = promGrouping.ReplaceAllString(expr, "")
	for _, m := range promIdent.FindAllStringSubmatch(expr, -1) {
		word := strings.TrimSpace(strings.TrimSuffix(m[0], "("))
		switch {
		case slices.Contains(promWords, word):
		case m[1] != "":
			bad("unknown function %s", word)
		default:
			use(word)
		}
	}
	if len(used) == 0 {
		bad("uses no metric of the agent")
	}
	have := slices.Clone(targetLabels)
	for _, labels := range used {
		have = append(have, labels...)
	}
	for _, l := range grouped {
		if !slices.Contains(have, l) {
			bad("groups by %q, which none of its metrics carries", l)
		}
	}
	if listed != "" && !slices.Contains(have, listed) {
		bad("label_values lists %q, which its metric does not carry", listed)
	}
	return problems
}

// TestPrometheusQueries checks every Prometheus panel, annotation and
// variable query against the metrics the agent exports.
func TestPrometheusQueries(t *testing.T) {
	used := map[string]bool{}
	var n int
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries {
			if q.dsType != dsPrometheus {
				continue
			}
			n++
			for _, p := range checkPromQL(q.text) {
				t.Errorf("%s: %s\nexpr: %s", q, p, q.text)
			}
			for name := range agentMetrics {
				if strings.Contains(q.text, name) {
					used[name] = true
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no dashboard queries Prometheus")
	}
	// The agent-health dashboard is meant to show every metric.
	for name := range agentMetrics {
		if !used[name] {
			t.Errorf("no dashboard shows %s", name)
		}
	}
}

// TestCheckPromQL shows that the checker catches what it is for.
func TestCheckPromQL(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (feed) (rate(sluice_feed_messages_total{instance=~"$instance", feed=~"$feed"}[$__rate_interval]))`, true},
		{`histogram_quantile(0.99, sum by (sink, le) (rate(sluice_lag_seconds_bucket{sink=~"$sink"}[5m])))`, true},
		{`label_values(sluice_feed_up{instance=~"$instance"}, feed)`, true},
		{`sluice_sink_failed{sink="a"} == 1`, true},
		{`sum(rate(sluice_feed_message_total[5m]))`, false},           // misspelt metric
		{`sum by (sink) (rate(sluice_feed_points_total[5m]))`, false}, // label of another metric
		{`sluice_feed_up{sink="x"}`, false},                           // no such label
		{`sluice_lag_seconds{sink="x"}`, false},                       // a histogram is read through its series
		{`label_values(sluice_feed_up, sink)`, false},
		{`rates(sluice_feed_up[5m])`, false},
		{`up`, false},
	} {
		if got := checkPromQL(tc.expr); (len(got) == 0) != tc.ok {
			t.Errorf("checkPromQL(%s) = %q, want ok=%v", tc.expr, got, tc.ok)
		}
	}
}
