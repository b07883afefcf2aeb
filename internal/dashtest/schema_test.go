package dashtest

// Every dashboard against Grafana's own dashboard schema, as the Grafana
// Foundation SDK generates it from Grafana's CUE kinds: its strict decoder
// refuses unknown fields, missing required fields and wrong types in the
// dashboard, its panels and rows, template variables, annotations, links,
// each core panel type's options and fieldConfig.defaults.custom, and the
// queries of the datasources it knows (Prometheus among them; InfluxDB and
// the SQLite plugin's queries it takes as they are). Its Validate then
// checks the schema's constraints.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/candlestick"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// schemaPanels are the panel types whose options the check knows: the
// ones the dashboards use. (The SDK's plugins.RegisterDefaultPlugins
// knows every core type, but building all of them doubles the cold build
// of this package.) A panel of another type is reported, so that it gets
// added here rather than go unchecked.
var schemaPanels = []variants.PanelcfgConfig{
	candlestick.VariantConfig(), stat.VariantConfig(), statetimeline.VariantConfig(),
	table.VariantConfig(), timeseries.VariantConfig(),
}

// registerPlugins teaches the SDK's decoder those panel types' options and
// Prometheus's query; without it options and targets are not checked.
var registerPlugins = sync.OnceFunc(func() {
	rt := cog.NewRuntime()
	for _, p := range schemaPanels {
		rt.RegisterPanelcfgVariant(p)
	}
	rt.RegisterDataqueryVariant(prometheus.VariantConfig())
})

// schemaProblems returns what Grafana's dashboard schema finds wrong in a
// dashboard's JSON, one problem a line, each with its JSON path.
func schemaProblems(raw []byte) []string {
	registerPlugins()
	var problems []string
	add := func(prefix string, err error) {
		var be cog.BuildErrors
		switch {
		case err == nil:
		case errors.As(err, &be): // also a nil BuildErrors, which is no problem
			for _, e := range be {
				problems = append(problems, prefix+e.Error())
			}
		default:
			problems = append(problems, prefix+err.Error())
		}
	}
	var d grafana.Dashboard
	add("", d.UnmarshalJSONStrict(raw))
	add("", d.Validate())

	// The SDK decodes a panel's fieldConfig strictly only in its custom
	// part: decode the rest (defaults, overrides) with the schema's own
	// strict decoder too.
	type panel struct {
		Type        string          `json:"type"`
		FieldConfig json.RawMessage `json:"fieldConfig"`
	}
	var shape struct {
		Panels []struct {
			panel
			Panels []panel `json:"panels"` // a row's
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		return append(problems, err.Error())
	}
	check := func(path string, p panel) {
		if _, ok := cog.ConfigForPanelcfgVariant(p.Type); !ok && p.Type != "row" {
			problems = append(problems, fmt.Sprintf("%s: panel type %q is not in schemaPanels: its options would go unchecked", path, p.Type))
		}
		if p.FieldConfig != nil {
			var src grafana.FieldConfigSource
			add(path+".fieldConfig.", src.UnmarshalJSONStrict(p.FieldConfig))
		}
	}
	for i, p := range shape.Panels {
		path := "panels[" + strconv.Itoa(i) + "]"
		check(path, p.panel)
		for j, inner := range p.Panels {
			check(path+".panels["+strconv.Itoa(j)+"]", inner)
		}
	}
	return problems
}

// TestDashboardsMatchGrafanaSchema decodes every dashboard strictly
// against Grafana's dashboard schema.
func TestDashboardsMatchGrafanaSchema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s/dashboards (%v)", grafanaDir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range schemaProblems(raw) {
			t.Errorf("%s: %s", filepath.Base(f), p)
		}
	}
}

// TestSchemaProblemsCatches shows that the schema check reports what it is
// for, on changed copies of the dashboards.
func TestSchemaProblemsCatches(t *testing.T) {
	load := func(name string) map[string]any {
		raw, err := os.ReadFile(filepath.Join(grafanaDir, "dashboards", name))
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// at walks a decoded JSON document: keys for objects, ints for arrays.
	at := func(v any, path ...any) map[string]any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		return v.(map[string]any)
	}
	firstPanel := func(d map[string]any, typ string) map[string]any {
		for _, p := range d["panels"].([]any) {
			if p := p.(map[string]any); p["type"] == typ {
				return p
			}
		}
		t.Fatalf("no %s panel", typ)
		return nil
	}
	for _, tc := range []struct {
		name, file string
		change     func(d map[string]any)
	}{
		{"as it is", "agent-health.json", func(map[string]any) {}},
		{"as it is", "market-influxdb.json", func(map[string]any) {}},
		{"an InfluxDB annotation in the old form, its query outside target", "market-influxdb.json", func(d map[string]any) {
			a := at(d, "annotations", "list", 1)
			tg := a["target"].(map[string]any)
			a["query"], a["textColumn"], a["tagsColumn"] = tg["query"], tg["textColumn"], tg["tagsColumn"]
			delete(a, "target")
		}},
		{"schemaVersion missing", "agent-health.json", func(d map[string]any) { delete(d, "schemaVersion") }},
		{"a stat panel without graphMode", "agent-health.json", func(d map[string]any) {
			delete(firstPanel(d, "stat")["options"].(map[string]any), "graphMode")
		}},
		{"a misspelt legend option", "agent-health.json", func(d map[string]any) {
			at(firstPanel(d, "timeseries"), "options", "legend")["showLegnd"] = true
		}},
		{"a tooltip mode of the wrong type", "market-sqlite.json", func(d map[string]any) {
			at(firstPanel(d, "timeseries"), "options", "tooltip")["mode"] = 1
		}},
		{"a Prometheus target with a misspelt field", "agent-health.json", func(d map[string]any) {
			at(firstPanel(d, "timeseries"), "targets", 0)["legendFromat"] = "{{feed}}"
		}},
		{"an unknown fieldConfig default", "agent-health.json", func(d map[string]any) {
			at(firstPanel(d, "timeseries"), "fieldConfig", "defaults")["unitt"] = "s"
		}},
		{"a template variable without a name", "market-sqlite.json", func(d map[string]any) {
			delete(at(d, "templating", "list", 0), "name")
		}},
		{"a panel type the check does not know", "agent-health.json", func(d map[string]any) {
			firstPanel(d, "stat")["type"] = "gauge"
		}},
	} {
		t.Run(tc.file+"/"+tc.name, func(t *testing.T) {
			d := load(tc.file)
			tc.change(d)
			raw, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			got := schemaProblems(raw)
			if want := tc.name != "as it is"; (len(got) > 0) != want {
				t.Errorf("problems: %q, want some: %v", got, want)
			}
			if len(got) > 0 {
				t.Logf("%s", fmt.Sprint(got))
			}
		})
	}
}
