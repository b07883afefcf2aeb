package binancesim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins/binance/market"
)

// Replay is a recorded session (shared/data/binance/recorded/*.replay.jsonl)
// loaded for serving: its WebSocket frames verbatim and in order on the
// combined endpoint, its REST depth snapshots at the REST depth path.
type Replay struct {
	Market market.Market
	// Streams are the streams of the recorded connect URL.
	Streams []string
	frames  []replayFrame
	snaps   map[string][]replaySnap // by upper-case symbol
}

type replayFrame struct {
	t      float64 // recorded receive time, unix seconds
	stream string
	raw    []byte // the combined frame, verbatim
	data   []byte // its "data", for raw /ws connections
}

type replaySnap struct {
	pos  int // ws frames recorded before it
	body []byte
}

// replayLine is one line of a *.replay.jsonl file.
type replayLine struct {
	T   float64 `json:"t"`
	Src string  `json:"src"`
	URL string  `json:"url"`
	Raw string  `json:"raw"`
}

// LoadReplay reads a recorded session. The market is taken from the
// recorded connect URL's host (stream. spot, fstream. USD-M, dstream.
// COIN-M).
func LoadReplay(path string) (*Replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load replay: %w", err)
	}
	defer f.Close()
	r := &Replay{snaps: map[string][]replaySnap{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		var l replayLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("load replay %s line %d: %w", path, n, err)
		}
		switch l.Src {
		case "connect":
			u, err := url.Parse(l.URL)
			if err != nil {
				return nil, fmt.Errorf("load replay %s line %d: %w", path, n, err)
			}
			switch host := u.Hostname(); {
			case strings.HasPrefix(host, "fstream"):
				r.Market = market.USDM
			case strings.HasPrefix(host, "dstream"):
				r.Market = market.COINM
			default:
				r.Market = market.Spot
			}
			if s := u.Query().Get("streams"); s != "" {
				r.Streams = strings.Split(s, "/")
			}
		case "ws":
			var env struct {
				Stream string          `json:"stream"`
				Data   json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(l.Raw), &env); err != nil || env.Stream == "" {
				return nil, fmt.Errorf("load replay %s line %d: not a combined-stream frame", path, n)
			}
			r.frames = append(r.frames, replayFrame{t: l.T, stream: env.Stream, raw: []byte(l.Raw), data: env.Data})
		case "rest":
			u, err := url.Parse(l.URL)
			if err != nil {
				return nil, fmt.Errorf("load replay %s line %d: %w", path, n, err)
			}
			sym := strings.ToUpper(u.Query().Get("symbol"))
			r.snaps[sym] = append(r.snaps[sym], replaySnap{pos: len(r.frames), body: []byte(l.Raw)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load replay %s: %w", path, err)
	}
	if r.Market == market.MarketInvalid {
		return nil, fmt.Errorf("load replay %s: no connect line", path)
	}
	return r, nil
}

// Frames returns the recorded WebSocket frames, verbatim, in order.
func (r *Replay) Frames() [][]byte {
	out := make([][]byte, len(r.frames))
	for i, f := range r.frames {
		out[i] = f.raw
	}
	return out
}

// Snapshots returns the recorded REST depth snapshot bodies of a symbol.
func (r *Replay) Snapshots(symbol string) [][]byte {
	var out [][]byte
	for _, s := range r.snaps[strings.ToUpper(symbol)] {
		out = append(out, s.body)
	}
	return out
}

// snapshot is the snapshot a client gets at replay position pos: the
// newest recorded at or before it, or the first one if none was yet.
func (r *Replay) snapshot(symbol string, pos int) []byte {
	snaps := r.snaps[symbol]
	if len(snaps) == 0 {
		return nil
	}
	best := snaps[0]
	for _, s := range snaps {
		if s.pos <= pos {
			best = s
		}
	}
	return best.body
}

// replay plays the recording to one connection: the frames of the streams
// it subscribed to, paced by the recorded times divided by speed (0: as
// fast as the client reads). The queue is waited on, not overflowed.
func (c *conn) replay(r *Replay, speed float64) {
	defer c.wg.Done()
	if len(r.frames) == 0 {
		return
	}
	start, t0 := time.Now(), r.frames[0].t
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, f := range r.frames {
		if speed > 0 {
			at := start.Add(time.Duration((f.t - t0) / speed * float64(time.Second)))
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-c.done:
					return
				case <-timer.C:
				}
			}
		}
		for {
			pos := c.sim.replayPos.Load()
			if int64(i+1) <= pos || c.sim.replayPos.CompareAndSwap(pos, int64(i+1)) {
				break
			}
		}
		c.sim.mu.Lock()
		_, want := c.streams[f.stream]
		c.sim.mu.Unlock()
		if !want {
			continue
		}
		frame := f.data
		if c.combined.Load() {
			frame = f.raw
		}
		select {
		case c.out <- outFrame{b: frame}:
		case <-c.done:
			return
		}
	}
}
