package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/sinks/all"
)

// exampleBlock starts a commented-out block in the example: a sink, plugin
// or feed that is off by default; topBlock, a top-level section (cluster).
var (
	exampleBlock = regexp.MustCompile(`^  # [a-z_]+:$`)
	topBlock     = regexp.MustCompile(`^# [a-z_]+:$`)
)

// uncommentExample switches on the example's commented-out blocks: the
// block's header and the more deeply indented comment lines after it.
// Prose comments inside a block stay comments.
func uncommentExample(text string) string {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		indent := ""
		switch {
		case exampleBlock.MatchString(lines[i]):
			indent = "  "
		case topBlock.MatchString(lines[i]):
		default:
			continue
		}
		lines[i] = indent + lines[i][len(indent+"# "):]
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], indent+"#   ") {
			i++
			lines[i] = indent + lines[i][len(indent+"# "):]
		}
	}
	return strings.Join(lines, "\n")
}

// TestExampleDocumentsEveryKey loads the example with its commented-out
// blocks switched on, and checks that together with examples/synth.yaml it
// shows every key the schema knows. Adding a key without documenting it
// fails here.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("sluice.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := uncommentExample(string(b))
	if text == string(b) {
		t.Fatal("found no commented-out blocks to switch on")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	token := filepath.Join(dir, "influxdb.token")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	liveSecret := filepath.Join(dir, "live.secret")
	if err := os.WriteFile(liveSecret, []byte(strings.Repeat("s", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadWithEnv(path, []string{
		"SLUICE_FEEDS_DIR=" + examples,
		"SLUICE_SINKS__INFLUXDB__TOKEN_FILE=" + token,
		"SLUICE_SINKS__LIVE__TOKEN_HMAC_SECRET_FILE=" + liveSecret,
		"SLUICE_SINKS__LIVE__REDIS__PASSWORD_FILE=" + token,
	}, all.Types.Configs())
	if err != nil {
		t.Fatalf("the example with its blocks switched on does not load:\n%v\n\n%s", err, text)
	}
	exampleFeeds, err := LoadFeedsDir(examples)
	if err != nil {
		t.Fatal(err)
	}
	// The example's own demo feed plus every feed in examples/.
	if len(cfg.Sinks) != 4 || len(cfg.Feeds) != 1+len(exampleFeeds) || len(cfg.Plugins) != 1 {
		t.Errorf("switched on %d sinks, %d feeds, %d plugins; want 4, %d, 1", len(cfg.Sinks), len(cfg.Feeds), len(cfg.Plugins), 1+len(exampleFeeds))
	}

	raw, perr := parseYAML(path, []byte(text))
	if perr != nil {
		t.Fatal(perr)
	}
	dropIn, perr := readYAML(filepath.Join(examples, "synth.yaml"))
	if perr != nil {
		t.Fatal(perr)
	}
	for name, f := range dropIn["feeds"].(map[string]any) {
		raw["feeds"].(map[string]any)[name] = f
	}
	types, err := compileSinkTypes(all.Types.Configs())
	if err != nil {
		t.Fatal(err)
	}
	// A sink type documents its keys where it declares them, too.
	for _, typ := range sortedKeys(types) {
		for _, key := range undocumentedTags(types[typ].spec, nil) {
			t.Errorf("sink type %s: key %s has no doc tag", typ, key)
		}
	}
	for _, key := range undocumented(rootSpec, raw, nil, types) {
		// A key that cannot be on with the others (token, with
		// token_file) is shown as a comment inside its block.
		last := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(text, "# "+last+":") {
			t.Errorf("sluice.example.yaml does not show %s", key)
		}
	}
}

// undocumented lists the keys of s missing from v. Every entry of a named
// mapping must show all its keys; sinks must show every key of their type
// between them, and at least one pipeline override.
func undocumented(s *spec, v any, path []string, types map[string]*sinkType) []string {
	m, _ := v.(map[string]any)
	var missing []string
	switch s.kind {
	case kindSection:
		for _, k := range sortedKeys(s.keys) {
			sub, ok := m[k]
			if !ok {
				missing = append(missing, keyString(child(path, k)))
				continue
			}
			missing = append(missing, undocumented(s.keys[k], sub, child(path, k), types)...)
		}
	case kindNamed:
		if len(m) == 0 {
			return []string{keyString(child(path, "<name>"))}
		}
		if s.elem.kind == kindSink {
			return undocumentedSinks(m, path, types)
		}
		for _, name := range sortedKeys(m) {
			missing = append(missing, undocumented(s.elem, m[name], child(path, name), types)...)
		}
	}
	return missing
}

func undocumentedSinks(sinks map[string]any, path []string, types map[string]*sinkType) []string {
	var missing []string
	overrides := false
	for _, typ := range sortedKeys(types) {
		found := false
		for _, name := range sortedKeys(sinks) {
			sink, _ := sinks[name].(map[string]any)
			if sink["type"] != typ {
				continue
			}
			found = true
			missing = append(missing, undocumented(types[typ].spec, sink, child(path, name), types)...)
			for k := range sink {
				if _, ok := pipelineSpec.keys[k]; ok {
					overrides = true
				}
			}
		}
		if !found {
			missing = append(missing, keyString(child(path, "<a sink of type "+typ+">")))
		}
	}
	if !overrides {
		missing = append(missing, keyString(child(path, "<name>.<a pipeline override>")))
	}
	return missing
}

// undocumentedTags lists the keys of a sink type's section, however deep,
// that have no doc tag.
func undocumentedTags(s *spec, path []string) []string {
	var missing []string
	for _, k := range sortedKeys(s.keys) {
		if s.keys[k].doc == "" {
			missing = append(missing, keyString(child(path, k)))
		}
		if s.keys[k].kind == kindSection {
			missing = append(missing, undocumentedTags(s.keys[k], child(path, k))...)
		}
	}
	return missing
}

// FuzzParse checks that no input panics and that every problem comes back
// as an *Error naming a file.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "sluice.example.yaml", "examples/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	env := []string{"SLUICE_FEEDS_DIR="}
	types, err := compileSinkTypes(all.Types.Configs())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parse("fuzz.yaml", b, env, types)
		if err == nil {
			_ = cfg.String()
			return
		}
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			var ce *Error
			if !errors.As(e, &ce) || ce.File == "" || ce.Msg == "" {
				t.Errorf("not a complete *Error: %#v", e)
			}
		}
	})
}
