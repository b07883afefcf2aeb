package jsonws

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// FeedConfig extracts a jsonws feed's `config:` block, as JSON, from a
// YAML (or JSON) document, as the agent would hand it to the plugin (the
// tests and examples use it): a feed file, in which case feed names the feed
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
			return nil, fmt.Errorf("feed %s given but the file has no feeds:", feed)
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
			return nil, fmt.Errorf("the file defines %d jsonws feeds %v; name one", len(names), names)
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
