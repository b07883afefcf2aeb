package dashtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// grafanaDir is the repository's grafana/ directory.
const grafanaDir = "../../grafana"

// Datasource types the dashboards use, and the uids provisioning gives them.
const (
	dsInflux     = "influxdb"
	dsSQLite     = "frser-sqlite-datasource"
	dsPrometheus = "prometheus"
)

var datasourceUIDs = map[string]string{
	dsInflux:     "sluice-influxdb",
	dsSQLite:     "sluice-sqlite",
	dsPrometheus: "sluice-prometheus",
}

// The parts of Grafana's dashboard JSON the tests read.
type (
	dashboardJSON struct {
		UID         string      `json:"uid"`
		Title       string      `json:"title"`
		Panels      []panelJSON `json:"panels"`
		Annotations struct {
			List []annotationJSON `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []variableJSON `json:"list"`
		} `json:"templating"`
	}
	dsRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	panelJSON struct {
		ID         int          `json:"id"`
		Title      string       `json:"title"`
		Type       string       `json:"type"`
		Datasource *dsRef       `json:"datasource"`
		Targets    []targetJSON `json:"targets"`
		Panels     []panelJSON  `json:"panels"` // a collapsed row's panels
	}
	targetJSON struct {
		RefID        string   `json:"refId"`
		Datasource   *dsRef   `json:"datasource"`
		Query        string   `json:"query"`        // InfluxQL
		RawQuery     bool     `json:"rawQuery"`     // InfluxQL typed as text
		RawQueryText string   `json:"rawQueryText"` // SQLite
		TimeColumns  []string `json:"timeColumns"`  // SQLite: columns read as time
		Expr         string   `json:"expr"`         // PromQL
		Instant      bool     `json:"instant"`      // PromQL: one value at the range's end
		Interval     string   `json:"interval"`     // PromQL: the least step ("" for the datasource's)
		LegendFormat string   `json:"legendFormat"` // PromQL: series names, {{label}} templates
	}
	annotationJSON struct {
		Name        string      `json:"name"`
		BuiltIn     int         `json:"builtIn"`
		Datasource  *dsRef      `json:"datasource"`
		Query       string      `json:"query"` // InfluxQL, before Grafana moved it into target
		Expr        string      `json:"expr"`  // PromQL, likewise
		Step        string      `json:"step"`  // PromQL: target.interval, likewise
		Target      *targetJSON `json:"target"`
		TitleFormat string      `json:"titleFormat"` // Prometheus: {{label}} templates
		TextFormat  string      `json:"textFormat"`
		TagKeys     string      `json:"tagKeys"` // Prometheus: labels shown as tags, comma-separated
	}
	variableJSON struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Datasource *dsRef          `json:"datasource"`
		Query      json.RawMessage `json:"query"` // a string, or {"query": ...} for Prometheus
		Multi      bool            `json:"multi"`
		IncludeAll bool            `json:"includeAll"`
		AllValue   string          `json:"allValue"` // what "All" stands for, if set
		Options    []struct {
			Value string `json:"value"`
		} `json:"options"`
	}
)

// query is one query a dashboard sends to a datasource.
type query struct {
	dashboard  string
	where      string // "panel Price/A", "annotation Gaps", "variable symbol"
	dsType     string
	text       string
	variable   string   // the variable the query lists values for, if any
	timeCols   []string // SQLite: the columns Grafana reads as time
	annotation string   // the annotation's name, for an annotation
	instant    bool     // Prometheus: evaluated at the range's end only
	minStep    string   // Prometheus: the target's interval
	labels     []string // Prometheus: labels the legend, title, text or tags show
}

func (q query) String() string { return q.dashboard + ": " + q.where }

// dashboard is one parsed dashboard file.
type dashboard struct {
	file    string
	json    dashboardJSON
	queries []query
	vars    map[string]variableJSON
}

// loadDashboards parses every dashboard JSON under grafana/ and extracts
// its queries: panel targets, annotations and query variables.
func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s/dashboards", grafanaDir)
	}
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: filepath.Base(f), vars: map[string]variableJSON{}}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d.json); err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		if err := d.extract(); err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		out = append(out, d)
	}
	return out
}

// add checks q's datasource and text and adds it to the dashboard's
// queries.
func (d *dashboard) add(ds *dsRef, q query) error {
	if ds == nil {
		return fmt.Errorf("%s: no datasource", q.where)
	}
	if want, ok := datasourceUIDs[ds.Type]; !ok || ds.UID != want {
		return fmt.Errorf("%s: datasource %+v is not one provisioned in grafana/provisioning/datasources", q.where, *ds)
	}
	if strings.TrimSpace(q.text) == "" {
		return fmt.Errorf("%s: empty query", q.where)
	}
	q.dashboard, q.dsType = d.file, ds.Type
	d.queries = append(d.queries, q)
	return nil
}

// templateLabel matches a {{label}} of a legend, title or text format.
var templateLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// shownLabels returns the labels that formats refer to as {{label}} and
// that tagKeys lists.
func shownLabels(tagKeys string, formats ...string) []string {
	var out []string
	for _, f := range formats {
		for _, m := range templateLabel.FindAllStringSubmatch(f, -1) {
			out = append(out, m[1])
		}
	}
	for k := range strings.SplitSeq(tagKeys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (d *dashboard) extract() error {
	var walk func([]panelJSON) error
	walk = func(panels []panelJSON) error {
		for _, p := range panels {
			if p.Type == "row" {
				if err := walk(p.Panels); err != nil {
					return err
				}
				continue
			}
			if len(p.Targets) == 0 {
				return fmt.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				where := fmt.Sprintf("panel %q/%s", p.Title, tg.RefID)
				q := query{where: where, text: tg.text(ds), timeCols: tg.TimeColumns,
					instant: tg.Instant, minStep: tg.Interval, labels: shownLabels("", tg.LegendFormat)}
				if err := d.add(ds, q); err != nil {
					return err
				}
				if ds.Type == dsInflux && !tg.RawQuery {
					return fmt.Errorf("%s: InfluxQL targets must be raw queries (rawQuery: true)", where)
				}
			}
		}
		return nil
	}
	if err := walk(d.json.Panels); err != nil {
		return err
	}
	for _, a := range d.json.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		q := query{where: fmt.Sprintf("annotation %q", a.Name), text: a.Query, annotation: a.Name,
			labels: shownLabels(a.TagKeys, a.TitleFormat, a.TextFormat)}
		switch {
		case a.Expr != "":
			q.text, q.minStep = a.Expr, a.Step
		case a.Target != nil && q.text == "":
			q.text = a.Target.text(a.Datasource)
			q.timeCols = a.Target.TimeColumns
			q.minStep = a.Target.Interval
		}
		if err := d.add(a.Datasource, q); err != nil {
			return err
		}
	}
	for _, v := range d.json.Templating.List {
		d.vars[v.Name] = v
		if v.Type != "query" {
			continue
		}
		var text string
		if err := json.Unmarshal(v.Query, &text); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return fmt.Errorf("variable %s: query: %v", v.Name, err)
			}
			text = obj.Query
		}
		if err := d.add(v.Datasource, query{where: "variable " + v.Name, text: text, variable: v.Name}); err != nil {
			return err
		}
	}
	return nil
}

// text returns a target's query in its datasource's language.
func (tg *targetJSON) text(ds *dsRef) string {
	if ds == nil {
		return ""
	}
	switch ds.Type {
	case dsInflux:
		return tg.Query
	case dsSQLite:
		return tg.RawQueryText
	case dsPrometheus:
		return tg.Expr
	}
	return ""
}

// scenario is what a user has picked in Grafana: a time range and a value
// for each dashboard variable.
type scenario struct {
	name     string
	from, to time.Time
	vars     map[string]string
}

// maxDataPoints is about the width of a panel in pixels, which Grafana
// divides the range by to get $__interval.
const maxDataPoints = 1000

// minInterval is the datasources' timeInterval (provisioning): the floor
// of $__interval.
const minInterval = time.Second

// niceIntervals are the steps Grafana rounds $__interval to.
var niceIntervals = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 20 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour,
	12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// interval is $__interval as Grafana computes it for the scenario's range.
func (s scenario) interval() time.Duration {
	raw := max(s.to.Sub(s.from)/maxDataPoints, minInterval)
	for _, n := range niceIntervals {
		if raw <= n {
			return n
		}
	}
	return niceIntervals[len(niceIntervals)-1]
}

// influxDuration formats d as an InfluxQL duration literal, as Grafana
// writes $__interval: "1s", "5m", "2h", "7d".
func influxDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// varRef matches a variable reference: $name or ${name} (Grafana's
// ${name:format} is not used by these dashboards).
var varRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// expand substitutes Grafana's macros and variables the way Grafana does
// before a query leaves the browser (InfluxQL's $timeFilter is Grafana's
// too). It fails on a reference to a variable the scenario does not set,
// which catches typos and variables missing from the dashboard.
func (s scenario) expand(dsType, text string) (string, error) {
	from, to := s.from.UnixMilli(), s.to.UnixMilli()
	iv := s.interval()
	globals := map[string]string{
		"__from":          strconv.FormatInt(from, 10),
		"__to":            strconv.FormatInt(to, 10),
		"__interval_ms":   strconv.FormatInt(iv.Milliseconds(), 10),
		"__interval":      influxDuration(iv),
		"__rate_interval": influxDuration(max(4*15*time.Second, iv+15*time.Second)),
		"__range":         influxDuration(s.to.Sub(s.from).Round(time.Second)),
	}
	if dsType == dsInflux {
		globals["timeFilter"] = fmt.Sprintf("time >= %dms and time <= %dms", from, to)
	}
	var missing []string
	out := varRef.ReplaceAllStringFunc(text, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if v, ok := globals[name]; ok {
			return v
		}
		if v, ok := s.vars[name]; ok {
			return v
		}
		missing = append(missing, ref)
		return ref
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// referencedVars returns the dashboard variables a query refers to.
func referencedVars(text string, vars map[string]variableJSON) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(text, -1) {
		if name := m[1] + m[2]; vars[name].Name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// TestDashboardsWellFormed checks what Grafana needs of every dashboard
// before any query runs: unique uids and panel ids, known datasources,
// every variable a query uses defined, custom variables with options.
func TestDashboardsWellFormed(t *testing.T) {
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		if d.json.UID == "" || d.json.Title == "" {
			t.Errorf("%s: uid and title are required", d.file)
		}
		if prev, dup := uids[d.json.UID]; dup {
			t.Errorf("%s: uid %q also used by %s", d.file, d.json.UID, prev)
		}
		uids[d.json.UID] = d.file
		ids := map[int]bool{}
		var walk func([]panelJSON)
		walk = func(ps []panelJSON) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", d.file, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
			}
		}
		walk(d.json.Panels)
		for _, v := range d.json.Templating.List {
			if v.Type == "custom" && len(v.Options) == 0 {
				t.Errorf("%s: custom variable %s has no options", d.file, v.Name)
			}
		}
		for _, q := range d.queries {
			for _, m := range varRef.FindAllStringSubmatch(q.text, -1) {
				name := m[1] + m[2]
				if strings.HasPrefix(name, "__") || (name == "timeFilter" && q.dsType == dsInflux) {
					continue
				}
				if _, ok := d.vars[name]; !ok {
					t.Errorf("%s: uses $%s, which the dashboard does not define", q, name)
				}
			}
		}
		t.Logf("%s: %d queries", d.file, len(d.queries))
	}
}
