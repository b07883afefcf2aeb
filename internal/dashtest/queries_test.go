package dashtest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/internal/testinflux"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/influxdb"
	"github.com/sluicehq/sluice/sinks/sqlite"
)

// Every query of every dashboard (panels, annotations, query variables)
// runs against real stores holding the dataset, with Grafana's macros and
// variables filled in for several scenarios, and must return rows. A query
// variable must also list the value the scenario picked.

// writeBatch is the number of points per Write, about a pipeline batch.
const writeBatch = 5000

// fill writes the dataset through a real sink, as the pipeline would.
func fill(t *testing.T, s sinks.Sink, ds *dataset) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Declare(ctx, measurements()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(ds.points); i += writeBatch {
		if err := s.Write(ctx, ds.points[i:min(i+writeBatch, len(ds.points))]); err != nil {
			t.Fatalf("write points %d..: %v", i, err)
		}
	}
}

// scenarios are the choices a user makes in Grafana, built from the
// dataset: the whole span of the data for BTCUSDT on spot (with either
// trade measurement), and a few minutes around three recorded sessions
// on their busiest symbol.
func scenarios(t *testing.T, ds *dataset) []scenario {
	t.Helper()
	var out []scenario
	for _, trades := range []string{"trades", "agg_trades"} {
		out = append(out, scenario{
			name: "all data, spot BTCUSDT, " + trades,
			from: ds.first.Add(-time.Second), to: ds.last.Add(time.Second),
			vars: map[string]string{"trades": trades, "market": "spot", "symbol": "BTCUSDT", "candle_interval": "1m"},
		})
	}
	for _, name := range []string{"spot_2021-08-14", "usdm_2021-04-17", "coinm_2021-07-22"} {
		s := ds.sessions[name]
		if s == nil {
			t.Fatalf("recorded session %s missing", name)
		}
		sym := s.topSymbol()
		out = append(out, scenario{
			// Candles open up to a minute before the first frame.
			name: fmt.Sprintf("session %s, %s %s, agg_trades", name, s.market, sym),
			from: s.first.Add(-2 * time.Minute), to: s.last.Add(time.Minute),
			vars: map[string]string{"trades": "agg_trades", "market": s.market.String(), "symbol": sym, "candle_interval": "1m"},
		})
	}
	return out
}

// result is what a query returned.
type result struct {
	rows    int
	columns []string
	values  []string // a variable query's values
}

// runAll runs every query of the dashboards using dsType in every
// scenario.
func runAll(t *testing.T, dsType string, ds *dataset, run func(ctx context.Context, q query, text string) (result, error)) {
	var n int
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries {
			if q.dsType != dsType {
				continue
			}
			n++
			t.Run(strings.TrimSuffix(d.file, ".json")+"/"+q.where, func(t *testing.T) {
				for _, sc := range scenarios(t, ds) {
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

func TestSQLiteDashboards(t *testing.T) {
	ds := loadData(t)
	path := filepath.Join(t.TempDir(), "sluice.db")
	// The sink stays open, as the agent's would while Grafana reads.
	fill(t, sqlite.New(config.SQLite{Path: path}, nil), ds)

	// As the provisioned datasource opens it: read-only.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	runAll(t, dsSQLite, ds, func(ctx context.Context, q query, text string) (result, error) {
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

func TestInfluxDashboards(t *testing.T) {
	ds := loadData(t)
	srv := testinflux.Start(t)
	fill(t, influxdb.New(config.InfluxDB{
		URL: srv.URL(), Bucket: testinflux.Bucket, Token: srv.Token(),
		Gzip: true, Precision: "ns", Timeout: 10 * time.Second,
	}, nil), ds)

	client := &http.Client{Timeout: time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	runAll(t, dsInflux, ds, func(ctx context.Context, q query, text string) (result, error) {
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
