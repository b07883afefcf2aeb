package jsonws

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// SampleMain is the plugin binary's offline mode:
//
//	sluice-source-jsonws -sample FILE -feed-config FEED.yaml [-feed NAME]
//
// It prints the points the feed's rules make of each message in FILE and
// exits 0, or 1 when the config is invalid or any message produced a
// mapping error. FEED.yaml is a feed file (`feeds:`; -feed picks one when
// it defines several) or a bare `config:` block.
func SampleMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-source-jsonws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sample := fs.String("sample", "", "a file of sample messages, one JSON message per line")
	feedConfig := fs.String("feed-config", "", "a feed file (feeds:) or a bare jsonws config block, YAML or JSON")
	feed := fs.String("feed", "", "the feed to use when the feed file defines several")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice-source-jsonws -sample FILE -feed-config FEED.yaml [-feed NAME]")
		fmt.Fprintln(stderr, "Run without arguments, the binary is a sluice source plugin and must be started by the agent.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sample == "" || *feedConfig == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	doc, err := os.ReadFile(*feedConfig)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg, err := FeedConfig(doc, *feed)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *feedConfig, err)
		return 1
	}
	f, err := os.Open(*sample)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	msgs, err := Sample(cfg, f, time.Now().UTC())
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *feedConfig, err)
		return 1
	}
	if err := WriteSample(stdout, msgs); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, m := range msgs {
		if len(m.Errors) > 0 {
			return 1
		}
	}
	return 0
}

// FeedConfig extracts a jsonws feed's `config:` block, as JSON, from a
// YAML (or JSON) document: a feed file, in which case feed names the feed
// (it may be empty when exactly one feed uses the jsonws plugin), or the
// block itself.
func FeedConfig(doc []byte, feed string) (json.RawMessage, error) {
	var top any
	if err := yaml.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	tree, err := jsonable(top)
	if err != nil {
		return nil, err
	}
	m, _ := tree.(map[string]any)
	feeds, ok := m["feeds"].(map[string]any)
	if !ok {
		if feed != "" {
			return nil, fmt.Errorf("-feed %s given but the file has no feeds:", feed)
		}
		return json.Marshal(tree)
	}
	if feed == "" {
		var names []string
		for name, f := range feeds {
			if fm, _ := f.(map[string]any); fm["plugin"] == "jsonws" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		if len(names) != 1 {
			return nil, fmt.Errorf("the file defines %d jsonws feeds %v; pick one with -feed", len(names), names)
		}
		feed = names[0]
	}
	f, ok := feeds[feed].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no feed %q in the file", feed)
	}
	cfg, ok := f["config"]
	if !ok {
		return nil, fmt.Errorf("feed %q has no config:", feed)
	}
	return json.Marshal(cfg)
}

// jsonable turns YAML's decoded tree into one encoding/json accepts:
// mapping keys become strings (YAML allows `true:` as a key).
func jsonable(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = j
		}
		return out, nil
	case []any:
		for i, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	case time.Time:
		// YAML reads an unquoted date as a timestamp; give it back as text.
		return x.Format(time.RFC3339Nano), nil
	case float64, int, int64, uint64, string, bool, nil:
		return x, nil
	}
	return nil, errors.New("unsupported YAML value " + fmt.Sprintf("%T", v))
}
