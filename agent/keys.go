package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/atomicfile"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/config"
)

// keysFile, in data_dir, keeps which feed holds each measurement's
// uniqueness key across restarts of the agent.
const keysFile = "unique_keys.json"

// keyRegistry records, for every measurement a configured feed declared,
// that feed and the uniqueness key it declared. A sink stores one row per
// key, so a second feed declaring the same measurement with another key
// would re-key the first feed's rows (in SQLite, a new unique index over
// them; in InfluxDB, a new point identity): the registry refuses that
// declaration instead, and the feed making it fails with a reason naming
// both feeds and their files. Feeds agreeing on a key may share a
// measurement.
//
// The holders are the feeds that declared the measurement with the key
// the first one declared. Claims are saved in data_dir, so after a
// restart of the agent the feeds that held a measurement still hold it,
// whichever plugin answers first. A feed's claims go when it leaves the
// config or stops declaring the measurement; rows left in a sink by a
// feed that is gone are the sink's to protect (see sinks.RefusedError).
type keyRegistry struct {
	path string // "" keeps the claims in memory only
	log  *slog.Logger

	mu     sync.Mutex
	claims map[string][]keyClaim // by measurement: its holders, all with one key
}

// keyClaim is one feed holding a measurement.
type keyClaim struct {
	Feed   string   `json:"feed"`
	File   string   `json:"file"`
	Unique []string `json:"unique"`
}

func newKeyRegistry(path string, log *slog.Logger) *keyRegistry {
	return &keyRegistry{path: path, log: log, claims: make(map[string][]keyClaim)}
}

// load reads the saved claims, keeping those of the feeds in feeds. A
// missing or unreadable file leaves no claims (the unreadable one is
// logged): the first feed to declare a measurement then holds it.
func (r *keyRegistry) load(feeds map[string]config.Feed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	raw, err := os.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		r.log.Warn("cannot read the saved uniqueness key holders; the first feed to declare a measurement holds it", "file", r.path, "error", err)
		return
	}
	claims := make(map[string][]keyClaim)
	if err := json.Unmarshal(raw, &claims); err != nil {
		r.log.Warn("saved uniqueness key holders unreadable; the first feed to declare a measurement holds it", "file", r.path, "error", err)
		return
	}
	r.claims = claims
	r.retainLocked(feeds)
}

// retain drops the claims of feeds no longer in feeds and notes each
// remaining holder's current file.
func (r *keyRegistry) retain(feeds map[string]config.Feed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retainLocked(feeds)
}

func (r *keyRegistry) retainLocked(feeds map[string]config.Feed) {
	changed := false
	for m, holders := range r.claims {
		kept := holders[:0]
		for _, c := range holders {
			fc, ok := feeds[c.Feed]
			if !ok {
				changed = true
				continue
			}
			if fc.File != c.File {
				c.File, changed = fc.File, true
			}
			kept = append(kept, c)
		}
		r.set(m, kept)
	}
	if changed {
		r.saveLocked()
	}
}

// set makes holders m's holders; none deletes m.
func (r *keyRegistry) set(m string, holders []keyClaim) {
	if len(holders) == 0 {
		delete(r.claims, m)
		return
	}
	r.claims[m] = holders
}

// drop removes feed from m's holders and returns its claim, if it had one.
func (r *keyRegistry) drop(m, feed string) (keyClaim, bool) {
	holders := r.claims[m]
	i := slices.IndexFunc(holders, func(c keyClaim) bool { return c.Feed == feed })
	if i < 0 {
		return keyClaim{}, false
	}
	c := holders[i]
	r.set(m, slices.Delete(holders, i, i+1))
	return c, true
}

// holding lists the measurements feed holds.
func (r *keyRegistry) holding(feed string) []string {
	var ms []string
	for m, holders := range r.claims {
		if slices.ContainsFunc(holders, func(c keyClaim) bool { return c.Feed == feed }) {
			ms = append(ms, m)
		}
	}
	return ms
}

// claim records ms as what feed (defined in file) declares, replacing
// its earlier claims. If another feed holds one of the measurements with
// a different key, nothing changes and the error is a *KeyConflictError.
// undo puts the feed's earlier claims back.
func (r *keyRegistry) claim(feed, file string, ms []sluice.Measurement) (undo func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.conflictsLocked(feed, file, ms); err != nil {
		return nil, err
	}
	prev := make(map[string]keyClaim)
	for _, m := range r.holding(feed) {
		prev[m], _ = r.drop(m, feed)
	}
	for _, m := range ms {
		r.drop(m.Name, feed) // a measurement listed twice
		r.claims[m.Name] = append(r.claims[m.Name], keyClaim{Feed: feed, File: file, Unique: m.Unique})
	}
	r.saveLocked()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range r.holding(feed) {
			r.drop(m, feed)
		}
		for m, c := range prev {
			// Unless another feed took the measurement with another
			// key meanwhile.
			if holders := r.claims[m]; len(holders) == 0 || sameKey(holders[0].Unique, c.Unique) {
				r.claims[m] = append(holders, c)
			}
		}
		r.saveLocked()
	}, nil
}

func (r *keyRegistry) conflictsLocked(feed, file string, ms []sluice.Measurement) error {
	var cs []KeyConflict
	for _, m := range ms {
		for _, c := range r.claims[m.Name] {
			if c.Feed != feed && !sameKey(c.Unique, m.Unique) {
				cs = append(cs, KeyConflict{Measurement: m.Name, Unique: m.Unique,
					Other: c.Feed, OtherFile: c.File, OtherUnique: c.Unique})
				break // one holder says it: they all have one key
			}
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return &KeyConflictError{Feed: feed, File: file, Conflicts: cs}
}

// saveLocked writes the claims to r.path, atomically. A failure is
// logged: the claims hold in memory, and only a restart could lose them.
func (r *keyRegistry) saveLocked() {
	if r.path == "" {
		return
	}
	raw, err := json.MarshalIndent(r.claims, "", "  ")
	if err == nil {
		err = atomicfile.Write(r.path, raw)
	}
	if err != nil {
		r.log.Warn("cannot save the uniqueness key holders", "file", r.path, "error", err)
	}
}

// sameKey reports whether two uniqueness keys name the same set: the
// order of the names does not change which points are one.
func sameKey(a, b []string) bool {
	a, b = keySet(a), keySet(b)
	return slices.Equal(a, b)
}

func keySet(k []string) []string {
	s := slices.Clone(k)
	slices.Sort(s)
	return slices.Compact(s)
}

// KeyConflictError says that a feed declared measurements that another
// configured feed declares with a different uniqueness key.
type KeyConflictError struct {
	Feed, File string
	Conflicts  []KeyConflict
}

// KeyConflict is one measurement two feeds disagree on.
type KeyConflict struct {
	Measurement      string
	Unique           []string
	Other, OtherFile string
	OtherUnique      []string
}

func (e *KeyConflictError) Error() string {
	msgs := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		msgs[i] = fmt.Sprintf("measurement %q: feed %s (%s) declares its uniqueness key as %s, but feed %s (%s) declares it as %s",
			c.Measurement, e.Feed, e.File, formatKey(c.Unique), c.Other, c.OtherFile, formatKey(c.OtherUnique))
		if onlyTimeApart(c.Unique, c.OtherUnique) {
			msgs[i] += " (the keys differ only in time: add time to the one without it, as the binance plugin's trades and agg_trades have had since 2026-12-06)"
		}
	}
	return strings.Join(msgs, "; ") + "; feeds writing one measurement must declare the same key: " +
		"rename the measurement in one of them, or give them the same key"
}

// onlyTimeApart reports whether one key is the other plus "time".
func onlyTimeApart(a, b []string) bool {
	a, b = keySet(a), keySet(b)
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(a) > 0 && !slices.Contains(a, "time") && slices.Equal(keySet(append(slices.Clone(a), "time")), b)
}

func formatKey(k []string) string {
	if len(k) == 0 {
		return "none (every point new)"
	}
	return "(" + strings.Join(k, ", ") + ")"
}

// keyConflicts checks the measurements each feed declares (ValidateFeeds
// learns them from the plugins) against each other, feeds in name order,
// and returns one error per feed that disagrees with an earlier one.
func keyConflicts(cfg *config.Config, declared map[string][]sluice.Measurement) []error {
	r := newKeyRegistry("", slog.New(slog.DiscardHandler))
	var errs []error
	for _, name := range sortedKeys(declared) {
		fc := cfg.Feeds[name]
		if _, err := r.claim(name, fc.File, declared[name]); err != nil {
			errs = append(errs, &config.Error{File: fc.File, Key: "feeds." + name, Msg: err.Error()})
		}
	}
	return errs
}
