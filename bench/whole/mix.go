package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// symbolMix is what one symbol of a recorded session did per second.
type symbolMix struct {
	session, symbol               string
	seconds                       float64
	trades, updateIDs, bookTicker float64 // per second
	depthEvents, levels           float64 // per second; levels per event
	hasBookTicker                 bool
}

// recordedMix reads the recorded spot sessions (recorded/*.replay.jsonl)
// in dir: per symbol, trades (aggTrade l−f+1), book update ids (diff
// depth u−U+1), bookTicker frames and diff-depth events per second, and
// the levels a diff carries. These are the figures the profile's mix is
// taken from (bench/README.md).
func recordedMix(dir string) ([]symbolMix, error) {
	files, err := filepath.Glob(filepath.Join(dir, "spot_*.replay.jsonl"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no spot_*.replay.jsonl in %s", dir)
	}
	var out []symbolMix
	for _, f := range files {
		m, err := sessionMix(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, m...)
	}
	return out, nil
}

func sessionMix(path string) ([]symbolMix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type acc struct {
		trades, ids, bt, diffs, levels int64
		bookTicker                     bool
	}
	per := map[string]*acc{}
	var first, last float64
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var rec struct {
				T   float64 `json:"t"`
				Src string  `json:"src"`
				Raw string  `json:"raw"`
			}
			if json.Unmarshal(line, &rec) != nil || rec.Src != "ws" {
				goto next
			}
			if first == 0 {
				first = rec.T
			}
			last = rec.T
			var env struct {
				Stream string          `json:"stream"`
				Data   json.RawMessage `json:"data"`
			}
			if json.Unmarshal([]byte(rec.Raw), &env) != nil {
				goto next
			}
			sym, kind, _ := strings.Cut(env.Stream, "@")
			a := per[sym]
			if a == nil {
				a = &acc{}
				per[sym] = a
			}
			// Every key that differs only by case declared: encoding/json
			// matches keys regardless of case.
			var agg struct {
				First int64           `json:"f"`
				Last  int64           `json:"l"`
				M     json.RawMessage `json:"m"`
				BigM  json.RawMessage `json:"M"`
				E     json.RawMessage `json:"e"`
				BigE  json.RawMessage `json:"E"`
				T     json.RawMessage `json:"t"`
				BigT  json.RawMessage `json:"T"`
			}
			var d struct {
				U     int64             `json:"U"`
				LastU int64             `json:"u"`
				Bids  []json.RawMessage `json:"b"`
				Asks  []json.RawMessage `json:"a"`
				BigB  json.RawMessage   `json:"B"`
				BigA  json.RawMessage   `json:"A"`
				E     json.RawMessage   `json:"e"`
				BigE  json.RawMessage   `json:"E"`
			}
			switch {
			case kind == "aggTrade":
				if json.Unmarshal(env.Data, &agg) == nil {
					a.trades += agg.Last - agg.First + 1
				}
			case kind == "bookTicker":
				a.bt++
				a.bookTicker = true
			case strings.HasPrefix(kind, "depth"):
				if json.Unmarshal(env.Data, &d) == nil {
					a.diffs++
					a.ids += d.LastU - d.U + 1
					a.levels += int64(len(d.Bids) + len(d.Asks))
				}
			}
		}
	next:
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	sec := last - first
	if sec <= 0 {
		return nil, fmt.Errorf("no frames")
	}
	var out []symbolMix
	for sym, a := range per {
		m := symbolMix{session: strings.TrimSuffix(filepath.Base(path), ".replay.jsonl"), symbol: strings.ToUpper(sym),
			seconds: sec, trades: float64(a.trades) / sec, updateIDs: float64(a.ids) / sec,
			bookTicker: float64(a.bt) / sec, depthEvents: float64(a.diffs) / sec, hasBookTicker: a.bookTicker}
		if a.diffs > 0 {
			m.levels = float64(a.levels) / float64(a.diffs)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].updateIDs > out[j].updateIDs })
	return out, nil
}

// printMix writes the recorded mix as the Markdown table of
// bench/README.md, with the totals the profile's constants come from.
func printMix(w io.Writer, mix []symbolMix) {
	fmt.Fprintln(w, "| symbol (session, seconds) | trades/s | book update ids/s | bookTicker/s | depth events/s | levels per event |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var trades, ids float64
	for _, m := range mix {
		bt := "–"
		if m.hasBookTicker {
			bt = fmt.Sprintf("%.2f", m.bookTicker)
		}
		fmt.Fprintf(w, "| %s (%s, %.0f) | %.2f | %.1f | %s | %.2f | %.1f |\n", m.symbol, m.session, m.seconds,
			m.trades, m.updateIDs, bt, m.depthEvents, m.levels)
		trades += m.trades
		ids += m.updateIDs
	}
	fmt.Fprintf(w, "\nTogether: %.1f trades/s against %.0f book update ids/s: trades are %.1f %% of book updates.\n",
		trades, ids, 100*trades/ids)
}
