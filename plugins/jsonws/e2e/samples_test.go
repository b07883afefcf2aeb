package e2e_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins/jsonws"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/samples")

// Each example's sample file in config/examples/samples (the exchange's
// documented example frames, as one connection) maps to the points in
// testdata/samples: what `sluice validate -sample` shows a user trying
// the example offline.
func TestExampleSamplesGolden(t *testing.T) {
	for _, name := range []string{"coinbase", "kraken", "okx", "bybit", "htx", "bitfinex", "bitstamp"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := jsonws.FeedConfig([]byte(example(t, "jsonws-"+name+".yaml")), "")
			if err != nil {
				t.Fatal(err)
			}
			sample := readFile(t, filepath.Join(repoRoot(t), "config", "examples", "samples", name+".jsonl"))
			msgs, err := jsonws.Sample(cfg, strings.NewReader(sample), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := jsonws.WriteSample(&b, msgs); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "samples", name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := readFile(t, path); b.String() != want {
				t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, b.String(), want)
			}
		})
	}
}
