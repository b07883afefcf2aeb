package dashtest

// The agent-health dashboard against a real Prometheus scraping the real
// agent. The agent runs two synth feeds into two SQLite sinks: "steady"
// writes to both, "flaky" fails every 100 points so that its plugin is
// restarted again and again, and the "archive" sink is made to fail (a
// trigger refuses its inserts, which the sink classifies as needing an
// operator); "steady" also goes to a live sink. Prometheus scrapes
// /metrics every second. Then every panel,
// annotation and variable query of the dashboards that use Prometheus is
// sent to Prometheus's HTTP API as Grafana's Prometheus datasource sends
// it (see promRequest), and must return data.

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/internal/testagent"
	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testprom"
)

// promScrapeInterval is how often the test's Prometheus scrapes the agent.
// It is also the scrape interval (jsonData.timeInterval) of the datasource
// Grafana would query that Prometheus through: the floor of $__interval and
// the base of $__rate_interval. The provisioned datasource says 15s, for
// Prometheus's default scrape interval.
const promScrapeInterval = time.Second

// promSafeResolution is the most points Grafana lets a Prometheus range
// query return per series (Prometheus refuses more than 11,000).
const promSafeResolution = 11000

// The agent's feeds and sinks as this test configures them.
const (
	feedSteady  = "steady"
	feedFlaky   = "flaky"
	sinkDB      = "db"
	sinkArchive = "archive" // made to fail
	sinkLive    = "live"
)

// wantAnnotated says, for each annotation of the agent-health dashboard,
// which series it must mark: every series with a value above 0 (what
// Grafana turns into an annotation) must carry these labels.
var wantAnnotated = map[string]map[string]string{
	"Plugin restarts": {"feed": feedFlaky},
	"Sink failures":   {"sink": sinkArchive},
}

// promScenario is what a user has picked in Grafana: a time range ending
// now and, for each variable, the values picked (nil: "All").
type promScenario struct {
	name     string
	from, to time.Time
	values   map[string][]string
}

// promRanges are the time ranges the scenarios use, as Grafana's "Last 5
// minutes" (step and $__interval 1s, $__rate_interval 4s) and "Last 30
// minutes" (step 2s: coarser than the scrape interval).
var promRanges = []struct {
	name string
	span time.Duration
}{{"last 5 minutes", 5 * time.Minute}, {"last 30 minutes", 30 * time.Minute}}

func TestAgentHealthOnPrometheus(t *testing.T) {
	testprom.Require(t)
	dir := t.TempDir()
	start := time.Now().UTC()
	cfg := fmt.Sprintf(`sinks:
  %[1]s: {type: sqlite, path: sluice.db}
  %[2]s: {type: sqlite, path: archive.db, retry_initial: 50ms, retry_max: 500ms}
  %[6]s: {type: live, listen: %[7]q, anonymous_channels: ["*"]}
feeds:
  %[3]s: {plugin: synth, sinks: [%[1]s, %[2]s, %[6]s], config: {measurement: steady, rate: 200, start: %[5]q}}
  %[4]s: {plugin: synth, sinks: [%[1]s], config: {measurement: flaky, rate: 200, fail_after: 100, start: %[5]q}}
`, sinkDB, sinkArchive, feedSteady, feedFlaky, start.Format(time.RFC3339Nano), sinkLive, testagent.FreeAddr(t))
	a := testagent.Launch(t, testagent.WriteConfig(t, dir, cfg))
	target := strings.TrimPrefix(a.Base, "http://")
	// Prometheus takes a few seconds to its first scrape: start it with the
	// agent, not after.
	p := testprom.Start(t, testprom.Options{Targets: []string{target}, ScrapeInterval: promScrapeInterval})

	a.WaitFor(t, "the archive sink written to", func(st agent.Status) bool { return testagent.Written(st, sinkArchive) > 0 })
	refuseInserts(t, filepath.Join(dir, "archive.db"), "steady")
	a.WaitFor(t, "the archive sink failed and the flaky plugin restarted", func(st agent.Status) bool {
		return testagent.Sink(st, sinkArchive).State == "failed" && testagent.Feed(st, feedFlaky).Restarts > 0 &&
			testagent.Written(st, sinkDB) > 0
	})

	// Grafana aligns a range query's end down to a multiple of its step,
	// so what the dashboard shows must be in Prometheus one step (at most
	// 2s here) before now: a few scrapes, the failed sink, restarts.
	last, err := promStepFor(promRanges[len(promRanges)-1].span, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range []string{
		fmt.Sprintf(`count_over_time(sluice_feed_up{job=%q, feed=%q}[1m]) >= 4`, testprom.Job, feedSteady),
		fmt.Sprintf(`sluice_sink_failed{job=%q, sink=%q} == 1`, testprom.Job, sinkArchive),
		fmt.Sprintf(`changes(sluice_feed_restarts_total{job=%q, feed=%q}[1m]) > 0`, testprom.Job, feedFlaky),
	} {
		waitProm(t, a, p, cond, last.step)
	}

	dashboards := loadDashboards(t)
	all := func(now time.Time) []promScenario {
		var out []promScenario
		for _, r := range promRanges {
			out = append(out, promScenario{name: r.name + ", every variable All", from: now.Add(-r.span), to: now})
		}
		return out
	}
	var n int
	for _, d := range dashboards {
		for _, q := range d.queries {
			if q.dsType != dsPrometheus {
				continue
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no dashboard queries Prometheus")
	}

	// The variables first: what they list is what the other scenarios pick.
	now := time.Now()
	listed := map[string][]string{}
	wantListed := map[string][]string{"instance": {target}, "feed": {feedFlaky, feedSteady}, "sink": {sinkArchive, sinkDB, sinkLive}}
	for _, d := range dashboards {
		for _, q := range d.queries {
			if q.dsType != dsPrometheus || q.variable == "" {
				continue
			}
			t.Run(strings.TrimSuffix(d.file, ".json")+"/"+q.where, func(t *testing.T) {
				for _, sc := range all(now) {
					vals, err := promVariable(p, d, q, sc)
					if err != nil {
						t.Fatalf("%s: %v", sc.name, err)
					}
					for _, w := range wantListed[q.variable] {
						if !slices.Contains(vals, w) {
							t.Errorf("%s: lists %q, not %q", sc.name, vals, w)
						}
					}
					listed[q.variable] = vals
				}
			})
		}
	}

	now = time.Now()
	scs := all(now)
	for _, r := range promRanges {
		scs = append(scs, promScenario{name: r.name + ", every value picked", from: now.Add(-r.span), to: now, values: listed})
	}
	for _, d := range dashboards {
		for _, q := range d.queries {
			if q.dsType != dsPrometheus || q.variable != "" {
				continue
			}
			t.Run(strings.TrimSuffix(d.file, ".json")+"/"+q.where, func(t *testing.T) {
				for _, sc := range scs {
					if err := checkPromQuery(p, d, q, sc); err != nil {
						t.Errorf("%s: %v", sc.name, err)
					}
				}
			})
		}
	}
	t.Logf("%d Prometheus queries, %d scenarios, %s after the agent started", n, len(scs), time.Since(start).Round(time.Millisecond))
}

// refuseInserts makes every insert into table fail from now on, as a
// schema changed under the agent would: SQLite reports the trigger's
// RAISE(ABORT) as a constraint violation, which the sink cannot retry its
// way out of.
func refuseInserts(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `CREATE TRIGGER refuse_inserts BEFORE INSERT ON "` + table + `" BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitProm polls Prometheus until expr, evaluated ago before now, returns
// a series, failing the test if the agent exits or testagent.WaitTimeout
// passes first.
func waitProm(t *testing.T, a *testagent.Agent, p *testprom.Server, expr string, ago time.Duration) {
	t.Helper()
	deadline := time.Now().Add(testagent.WaitTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got, err := p.Query(ctx, expr, time.Now().Add(-ago))
		cancel()
		switch {
		case err != nil:
			t.Fatalf("%s: %v", expr, err)
		case len(got) > 0:
			return
		case time.Now().After(deadline):
			t.Fatalf("prometheus: no %s %s before now, after %s", expr, ago, testagent.WaitTimeout)
		}
		select {
		case <-a.Exited():
			t.Fatalf("sluice exited (%v) while waiting for %s", a.ExitErr(), expr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// promVariable runs a label_values(selector, label) variable query as
// Grafana does: the label's values on the series matching the selector
// within the range.
func promVariable(p *testprom.Server, d *dashboard, q query, sc promScenario) ([]string, error) {
	m := labelValues.FindStringSubmatch(q.text)
	if m == nil {
		return nil, fmt.Errorf("not a label_values(selector, label) query: %s", q.text)
	}
	match, err := sc.expand(d, m[1], promInterval{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vals, err := p.LabelValues(ctx, m[2], match, sc.from, sc.to)
	if err != nil {
		return nil, fmt.Errorf("%w\nmatch[]: %s", err, match)
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("lists nothing\nmatch[]: %s", match)
	}
	return vals, nil
}

// checkPromQuery runs a panel target or an annotation as Grafana does and
// checks that it has data: a series with a number (for an annotation, a
// value above 0, which is what Grafana marks), and on every series the
// labels its legend, title, text and tags show.
func checkPromQuery(p *testprom.Server, d *dashboard, q query, sc promScenario) error {
	iv, err := promStepFor(sc.to.Sub(sc.from), q.minStep)
	if err != nil {
		return err
	}
	expr, err := sc.expand(d, q.text, iv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []testprom.Series
	if q.instant {
		got, err = p.Query(ctx, expr, sc.to)
	} else {
		got, err = p.QueryRange(ctx, expr, alignDown(sc.from, iv.step), alignDown(sc.to, iv.step), iv.step)
	}
	if err != nil {
		return fmt.Errorf("%w\nexpr: %s", err, expr)
	}
	var data bool
	for _, sr := range got {
		for _, l := range q.labels {
			if sr.Labels[l] == "" {
				return fmt.Errorf("series %v has no label %q, which the query shows\nexpr: %s", sr.Labels, l, expr)
			}
		}
		for _, smp := range sr.Samples {
			switch {
			case math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0):
			case q.annotation == "" || smp.Value > 0:
				data = true
				if q.annotation == "" {
					continue
				}
				want, ok := wantAnnotated[q.annotation]
				if !ok {
					return fmt.Errorf("an annotation this test does not know: say in wantAnnotated what it must mark")
				}
				for k, v := range want {
					if sr.Labels[k] != v {
						return fmt.Errorf("marks %v, want only series with %s=%q\nexpr: %s", sr.Labels, k, v, expr)
					}
				}
			}
		}
	}
	if !data {
		return fmt.Errorf("no data (%d series)\nexpr: %s", len(got), expr)
	}
	return nil
}

// promInterval is what Grafana's Prometheus datasource derives from a
// query's time range: its step ($__interval) and $__rate_interval.
type promInterval struct {
	step, rate time.Duration
	span       time.Duration // the range ($__range)
}

// promStepFor computes the step as Grafana does: the range divided by the
// panel's data points (maxDataPoints), rounded to a nice interval, but
// no finer than the target's interval or else the datasource's scrape
// interval, nor than range/11000. $__rate_interval is then the larger of
// step + scrape interval and 4 × scrape interval (the target's interval,
// if set, stands for the scrape interval).
func promStepFor(span time.Duration, minStep string) (promInterval, error) {
	least := promScrapeInterval
	if minStep != "" {
		d, err := time.ParseDuration(minStep)
		if err != nil || d <= 0 {
			return promInterval{}, fmt.Errorf("interval %q: not a duration this test reads", minStep)
		}
		least = d
	}
	step := span / maxDataPoints
	if step < least {
		step = least
	} else {
		step = roundInterval(step)
	}
	step = max(step, roundInterval(span/promSafeResolution))
	return promInterval{step: step, rate: max(step+least, 4*least), span: span}, nil
}

// roundIntervals are Grafana's rounding steps: an interval up to upTo
// becomes to.
var roundIntervals = []struct{ upTo, to time.Duration }{
	{10 * time.Millisecond, time.Millisecond}, {15 * time.Millisecond, 10 * time.Millisecond},
	{35 * time.Millisecond, 20 * time.Millisecond}, {75 * time.Millisecond, 50 * time.Millisecond},
	{150 * time.Millisecond, 100 * time.Millisecond}, {350 * time.Millisecond, 200 * time.Millisecond},
	{750 * time.Millisecond, 500 * time.Millisecond}, {1500 * time.Millisecond, time.Second},
	{3500 * time.Millisecond, 2 * time.Second}, {7500 * time.Millisecond, 5 * time.Second},
	{12500 * time.Millisecond, 10 * time.Second}, {17500 * time.Millisecond, 15 * time.Second},
	{25 * time.Second, 20 * time.Second}, {45 * time.Second, 30 * time.Second},
	{90 * time.Second, time.Minute}, {210 * time.Second, 2 * time.Minute},
	{450 * time.Second, 5 * time.Minute}, {750 * time.Second, 10 * time.Minute},
	{1050 * time.Second, 15 * time.Minute}, {1500 * time.Second, 20 * time.Minute},
	{2700 * time.Second, 30 * time.Minute}, {5400 * time.Second, time.Hour},
	{9000 * time.Second, 2 * time.Hour}, {16200 * time.Second, 3 * time.Hour},
	{32400 * time.Second, 6 * time.Hour}, {24 * time.Hour, 12 * time.Hour},
	{48 * time.Hour, 24 * time.Hour}, {7 * 24 * time.Hour, 24 * time.Hour},
	{21 * 24 * time.Hour, 7 * 24 * time.Hour}, {42*24*time.Hour - time.Nanosecond, 30 * 24 * time.Hour},
}

func roundInterval(d time.Duration) time.Duration {
	for _, r := range roundIntervals {
		if d <= r.upTo {
			return r.to
		}
	}
	return 365 * 24 * time.Hour
}

// formatInterval writes $__interval as Grafana does: in its largest whole
// unit ("1s", "5m", "2h", "1d").
func formatInterval(d time.Duration) string {
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"y", 365 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d >= u.d {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return "1ms"
}

// alignDown is Grafana's alignment of a range query's start and end: down
// to a multiple of the step.
func alignDown(t time.Time, step time.Duration) time.Time {
	return time.UnixMilli(t.UnixMilli() / step.Milliseconds() * step.Milliseconds())
}

// expand substitutes what Grafana does before a Prometheus query leaves
// it. Dashboard variables, in the browser: "All" becomes the variable's
// allValue; picked values are regex-escaped (a multi-value or
// include-all variable) and joined as (a|b). Then Grafana's macros, in
// its Prometheus backend: $__interval (the step, "1s"), $__interval_ms,
// $__rate_interval (as Go prints a duration: "4s", "1m0s"),
// $__rate_interval_ms, $__range ("300s"), $__range_s, $__range_ms. A
// reference to anything else fails.
func (sc promScenario) expand(d *dashboard, text string, iv promInterval) (string, error) {
	rangeS := strconv.FormatInt(int64(math.Round(iv.span.Seconds())), 10)
	macros := map[string]string{
		"__interval":         formatInterval(iv.step),
		"__interval_ms":      strconv.FormatInt(iv.step.Milliseconds(), 10),
		"__rate_interval":    iv.rate.String(),
		"__rate_interval_ms": strconv.FormatInt(iv.rate.Milliseconds(), 10),
		"__range":            rangeS + "s",
		"__range_s":          rangeS,
		"__range_ms":         strconv.FormatInt(iv.span.Milliseconds(), 10),
	}
	var problems []string
	out := varRef.ReplaceAllStringFunc(text, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if v, ok := macros[name]; ok && iv.step > 0 {
			return v
		}
		v, ok := d.vars[name]
		if !ok {
			problems = append(problems, "no variable "+ref)
			return ref
		}
		picked := sc.values[name]
		if picked == nil {
			if !v.IncludeAll || v.AllValue == "" {
				problems = append(problems, "variable "+name+" has no allValue for All")
				return ref
			}
			return v.AllValue
		}
		if !v.Multi && !v.IncludeAll {
			if len(picked) != 1 {
				problems = append(problems, "variable "+name+" takes one value")
				return ref
			}
			return promEscape(picked[0])
		}
		esc := make([]string, len(picked))
		for i, p := range picked {
			esc[i] = promRegexEscape(p)
		}
		if len(esc) == 1 {
			return esc[0]
		}
		return "(" + strings.Join(esc, "|") + ")"
	})
	if len(problems) > 0 {
		return "", fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// promEscape is Grafana's escape of a single-value variable for a
// PromQL string: \ and ' doubled up.
func promEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\\'`).Replace(v)
}

// promRegexEscape is Grafana's escape of a multi-value variable's value:
// regex metacharacters escaped for a regex inside a PromQL string.
func promRegexEscape(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '\\':
			b.WriteString(`\\\\`)
			continue
		case strings.ContainsRune(`$^*{}[]'+?.()|`, r):
			b.WriteString(`\\`)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestPromExpand pins the substitution down on examples worked out from
// Grafana's rules.
func TestPromExpand(t *testing.T) {
	d := &dashboard{vars: map[string]variableJSON{
		"instance": {Name: "instance", Multi: true, IncludeAll: true, AllValue: ".*"},
		"feed":     {Name: "feed", Multi: true, IncludeAll: true, AllValue: ".*"},
		"single":   {Name: "single"},
	}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		span    time.Duration
		minStep string
		values  map[string][]string
		text    string
		want    string
	}{
		{5 * time.Minute, "", nil, `rate(x{feed=~"$feed"}[$__rate_interval])`, `rate(x{feed=~".*"}[4s])`},
		{5 * time.Minute, "", map[string][]string{"feed": {"b", "a"}}, `x{feed=~"$feed"}`, `x{feed=~"(b|a)"}`},
		{5 * time.Minute, "", map[string][]string{"instance": {"127.0.0.1:9273"}}, `x{instance=~"${instance}"}`, `x{instance=~"127\\.0\\.0\\.1:9273"}`},
		{5 * time.Minute, "", map[string][]string{"single": {`it's`}}, `x{a="$single"}`, `x{a="it\\'s"}`},
		{5 * time.Minute, "", nil, `increase(x[$__range]) $__interval $__interval_ms`, `increase(x[300s]) 1s 1000`},
		{30 * time.Minute, "", nil, `$__interval $__rate_interval`, `2s 4s`},
		{time.Hour, "", nil, `$__interval $__rate_interval`, `5s 6s`},
		{24 * time.Hour, "", nil, `$__interval $__rate_interval $__rate_interval_ms`, `1m 1m1s 61000`},
		{5 * time.Minute, "1m", nil, `$__interval $__rate_interval`, `1m 4m0s`},
	} {
		iv, err := promStepFor(tc.span, tc.minStep)
		if err != nil {
			t.Fatal(err)
		}
		sc := promScenario{from: now.Add(-tc.span), to: now, values: tc.values}
		got, err := sc.expand(d, tc.text, iv)
		if err != nil || got != tc.want {
			t.Errorf("%s over %s: %q (%v), want %q", tc.text, tc.span, got, err, tc.want)
		}
	}
	for _, text := range []string{`$nosuch`, `x{a="$single"}`} {
		if got, err := (promScenario{}).expand(d, text, promInterval{step: time.Second}); err == nil {
			t.Errorf("%s expanded to %q, want an error", text, got)
		}
	}
	if _, err := promStepFor(time.Hour, "$__interval"); err == nil {
		t.Error("an interval that is no duration was taken")
	}
}
