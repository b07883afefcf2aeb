package dashtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testbin"
	"github.com/sluicehq/sluice/internal/testinflux"
	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Every query of every dashboard (panels, annotations, query variables)
// runs against the stores the agent filled (agent_test.go), with
// Grafana's macros and variables filled in for several scenarios, and
// must return rows. A query variable must also list the value the
// scenario picked.

// scenarios are the choices a user makes in Grafana over the agent's run:
// every market and symbol, each with either trade measurement, the
// market's candle intervals taken in turn, over a range covering the run
// ($__interval 1s); and one over the last six hours (a coarser
// $__interval).
func scenarios(st *stores) []scenario {
	// A candle opens up to an interval before the exchange's first event.
	from := st.from.Add(-time.Minute)
	var out []scenario
	for _, f := range st.feeds {
		ivs := f.intervals()
		for i, sym := range simSymbols {
			for j, trades := range []string{market.MeasTrades, market.MeasAggTrades} {
				iv := ivs[(i+j)%len(ivs)]
				out = append(out, scenario{
					name: fmt.Sprintf("the run, %s %s, %s, %s candles", f.market, sym, trades, iv),
					from: from, to: st.to,
					vars: map[string]string{"trades": trades, "market": f.market.String(), "symbol": sym, "candle_interval": iv},
				})
			}
		}
	}
	f := st.feeds[0]
	return append(out, scenario{
		name: fmt.Sprintf("last 6h, %s %s, trades", f.market, simSymbols[0]),
		from: st.to.Add(-6 * time.Hour), to: st.to,
		vars: map[string]string{"trades": market.MeasTrades, "market": f.market.String(), "symbol": simSymbols[0], "candle_interval": f.intervals()[0]},
	})
}

// result is what a query returned.
type result struct {
	rows    int
	columns []string
	values  []string // a variable query's values
}

// runAll runs every query of the dashboards using dsType in every
// scenario.
func runAll(t *testing.T, dsType string, scs []scenario, run func(ctx context.Context, q query, text string) (result, error)) {
	var n int
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries {
			if q.dsType != dsType {
				continue
			}
			n++
			t.Run(strings.TrimSuffix(d.file, ".json")+"/"+q.where, func(t *testing.T) {
				for _, sc := range scs {
					text, err := sc.expand(q.dsType, q.text)
					if err != nil {
						t.Errorf("%s: %v", sc.name, err)
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					res, err := run(ctx, q, text)
					cancel()
					switch {
					case err != nil:
						t.Errorf("%s: %v\nquery: %s", sc.name, err, text)
					case res.rows == 0:
						t.Errorf("%s: no rows\nquery: %s", sc.name, text)
					case q.variable != "" && !slices.Contains(res.values, sc.vars[q.variable]):
						t.Errorf("%s: variable %s lists %v, not the scenario's %q\nquery: %s",
							sc.name, q.variable, res.values, sc.vars[q.variable], text)
					}
					for _, c := range q.timeCols {
						if err == nil && !slices.Contains(res.columns, c) {
							t.Errorf("%s: time column %q not among the columns %v", sc.name, c, res.columns)
						}
					}
				}
			})
		}
	}
	if n == 0 {
		t.Fatalf("no dashboard queries a %s datasource", dsType)
	}
}

// TestDashboardQueries fills the stores with the agent once, then runs
// every SQLite and every InfluxDB dashboard query against them.
func TestDashboardQueries(t *testing.T) {
	st := fillStores(t)
	scs := scenarios(st)
	t.Run("SQLite", func(t *testing.T) { testSQLite(t, st.sqlite, scs) })
	t.Run("InfluxDB", func(t *testing.T) {
		if st.influx == nil {
			t.Skipf("influxd not installed (%s); the agent wrote to SQLite only", testinflux.EnvBinary)
		}
		testInflux(t, st.influx, scs)
	})
}

func testSQLite(t *testing.T, path string, scs []scenario) {
	// As the provisioned datasource opens it: read-only.
	db, err := sql.Open(testbin.SQLiteDriver, "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	runAll(t, dsSQLite, scs, func(ctx context.Context, q query, text string) (result, error) {
		rows, err := db.QueryContext(ctx, text)
		if err != nil {
			return result{}, err
		}
		defer rows.Close()
		var res result
		if res.columns, err = rows.Columns(); err != nil {
			return res, err
		}
		// The plugin's variable support takes exactly one column.
		if q.variable != "" && len(res.columns) != 1 {
			return res, fmt.Errorf("a variable query must return one column, got %v", res.columns)
		}
		cells := make([]any, len(res.columns))
		for i := range cells {
			cells[i] = new(any)
		}
		for rows.Next() {
			if err := rows.Scan(cells...); err != nil {
				return res, err
			}
			res.rows++
			if q.variable != "" {
				res.values = append(res.values, fmt.Sprint(*cells[0].(*any)))
			}
		}
		return res, rows.Err()
	})
}

func testInflux(t *testing.T, srv *testinflux.Server, scs []scenario) {
	client := &http.Client{Timeout: time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	runAll(t, dsInflux, scs, func(ctx context.Context, q query, text string) (result, error) {
		return influxQuery(ctx, client, srv.URL(), text)
	})
}

// influxQuery runs InfluxQL as Grafana's InfluxDB datasource does: GET
// /query on the provisioned database, epoch milliseconds.
func influxQuery(ctx context.Context, c *http.Client, base, text string) (result, error) {
	v := url.Values{"db": {testinflux.Database}, "q": {text}, "epoch": {"ms"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/query?"+v.Encode(), nil)
	if err != nil {
		return result{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	var out struct {
		Error   string `json:"error"`
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Columns []string `json:"columns"`
				Values  [][]any  `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return result{}, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if out.Error != "" {
		return result{}, fmt.Errorf("influxdb: %s", out.Error)
	}
	var res result
	for _, r := range out.Results {
		if r.Error != "" {
			return result{}, fmt.Errorf("influxdb: %s", r.Error)
		}
		for _, s := range r.Series {
			res.columns = s.Columns
			res.rows += len(s.Values)
			// SHOW TAG VALUES answers key, value.
			if i := slices.Index(s.Columns, "value"); i >= 0 {
				for _, row := range s.Values {
					res.values = append(res.values, fmt.Sprint(row[i]))
				}
			}
		}
	}
	return res, nil
}
