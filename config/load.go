package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/capread"
)

// DefaultPath is where the agent looks for its main config file.
const DefaultPath = "/etc/sluice/sluice.yaml"

// EnvPrefix starts every environment variable that overrides a key:
// SLUICE_SINKS__INFLUX__TOKEN sets sinks.influx.token.
const EnvPrefix = "SLUICE_"

// Load reads the main config file at path (DefaultPath if empty), the
// feed files in its feeds_dir and the SLUICE_* environment variables, and
// returns the merged, defaulted and validated configuration. sinks are the
// types a sink may have.
//
// On failure the error is an errors.Join of *Error values, one per problem.
// A sink type whose config struct is unusable is a plain error: a bug.
func Load(path string, sinks SinkTypes) (*Config, error) {
	return LoadWithEnv(path, os.Environ(), sinks)
}

// LoadWithEnv is Load with the environment given as "NAME=value" strings,
// as from os.Environ.
func LoadWithEnv(path string, environ []string, sinks SinkTypes) (*Config, error) {
	types, err := compileSinkTypes(sinks)
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = DefaultPath
	}
	b, rerr := readConfigFile(path)
	if rerr != nil {
		return nil, rerr
	}
	return parse(path, b, environ, types)
}

// parse builds a Config from the main file's contents; path names the
// file in messages and anchors relative paths.
func parse(path string, b []byte, environ []string, types map[string]*sinkType) (*Config, error) {
	raw, perr := parseYAML(path, b)
	if perr != nil {
		return nil, perr
	}
	src := &source{file: path, raw: raw, env: parseEnv(environ), types: types}
	return src.build()
}

// ReloadFeeds re-reads the feeds directory (and any token files) and
// returns a new Config with the feeds it now defines. The main file is not
// re-read: everything else, including environment overrides, is as when c
// was loaded. c itself is not changed.
func (c *Config) ReloadFeeds() (*Config, error) {
	if c.src == nil {
		return nil, errors.New("config: reload feeds: config was not loaded from a file")
	}
	return c.src.build()
}

// LoadFeedsDir reads every *.yaml and *.yml file in dir, in name order, and
// returns the feeds they define with defaults applied. A missing dir
// defines no feeds. It checks each feed on its own; whether its sinks exist
// is checked only by Load and ReloadFeeds, which know the main config.
func LoadFeedsDir(dir string) (map[string]Feed, error) {
	errs := newErrorList()
	files, err := readFeedsDir(dir, errs)
	if err != nil {
		errs.add(&Error{File: dir, Msg: "cannot read feeds directory: " + ioMessage(err), Err: err})
	}
	org := newOrigins(dir)
	tree := make(map[string]any)
	feedFiles := make(map[string]string)
	mergeFeeds(tree, files, feedFiles, org, errs)

	w := &walker{errs: errs, origins: org}
	norm, _ := w.walk(feedsSpec, []string{"feeds"}, tree["feeds"])
	c := &checker{errs: errs, origins: org}
	feeds := c.feeds(asMap(norm), feedFiles, dir)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return feeds, nil
}

// source is what a Config is built from. It is kept so that ReloadFeeds can
// rebuild with a fresh feeds directory.
type source struct {
	file  string         // the main config file
	raw   map[string]any // its parsed contents; never modified
	env   []envVar
	types map[string]*sinkType
}

func (src *source) build() (*Config, error) {
	errs := newErrorList()
	errs.register(src.file)
	org := newOrigins(src.file)
	tree := copyTree(src.raw).(map[string]any)
	baseDir := filepath.Dir(src.file)

	// Feeds from drop-in files join the tree before the environment is
	// applied, so a variable can override a key of a drop-in feed too.
	feedFiles := make(map[string]string)
	if main, ok := tree["feeds"].(map[string]any); ok {
		for name := range main {
			feedFiles[name] = src.file
		}
	}
	if dir, dirOrigin := src.feedsDir(tree); dir != "" {
		dir = resolvePath(baseDir, dir)
		files, err := readFeedsDir(dir, errs)
		if err != nil {
			errs.add(&Error{File: dirOrigin, Key: "feeds_dir", Msg: "cannot read feeds directory: " + ioMessage(err), Err: err})
		}
		mergeFeeds(tree, files, feedFiles, org, errs)
	}
	for _, v := range src.env {
		errs.register(v.label())
	}
	applyEnv(tree, src.env, org, errs)

	w := &walker{errs: errs, origins: org, types: src.types, failed: make(map[string]bool)}
	norm, _ := w.walk(rootSpec, nil, tree)
	c := &checker{errs: errs, origins: org, types: src.types, failed: w.failed}
	cfg := decode(norm.(map[string]any), tree, feedFiles, src.file, c)
	if err := errs.err(); err != nil {
		return nil, err
	}
	cfg.File = src.file
	cfg.Warnings = envWarnings(src.env)
	cfg.src = src
	return cfg, nil
}

// feedsDir returns the feeds directory as the merged config will have it,
// and where that value came from. It is needed before the environment is
// applied; an invalid value is reported later by the walker.
func (src *source) feedsDir(tree map[string]any) (dir, from string) {
	for _, v := range slices.Backward(src.env) {
		if slices.Equal(v.path, []string{"feeds_dir"}) {
			return strings.TrimSpace(v.value), v.label()
		}
	}
	v, ok := tree["feeds_dir"]
	if !ok {
		return DefaultFeedsDir, src.file
	}
	dir, _ = v.(string)
	return dir, src.file
}

// feedFile is one drop-in file's feeds.
type feedFile struct {
	file  string
	feeds map[string]any
}

func readFeedsDir(dir string, errs *errorList) ([]feedFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []feedFile
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		// Dot files are editor droppings and the "..data" links of a
		// Kubernetes ConfigMap mount.
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		// Stat follows symlinks, which is how mounted config arrives.
		if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
			continue
		}
		raw, err := readYAML(path)
		if err != nil {
			errs.add(err)
			continue
		}
		errs.register(path)
		ff := feedFile{file: path}
		for _, k := range sortedKeys(raw) {
			if !slices.Contains(feedFileKeys, k) {
				errs.add(&Error{File: path, Key: k, Msg: "unknown key: a feeds file may hold only feeds"})
			}
		}
		switch feeds := raw["feeds"].(type) {
		case nil:
		case map[string]any:
			ff.feeds = feeds
		default:
			errs.add(&Error{File: path, Key: "feeds", Msg: "must be a mapping, got " + describe(feeds, false)})
		}
		out = append(out, ff)
	}
	return out, nil
}

// mergeFeeds adds the drop-in files' feeds to tree, refusing a name that
// is already defined. feedFiles records each feed's file.
func mergeFeeds(tree map[string]any, files []feedFile, feedFiles map[string]string, org *origins, errs *errorList) {
	if len(files) == 0 {
		return
	}
	if tree["feeds"] == nil {
		tree["feeds"] = make(map[string]any)
	}
	feeds, ok := tree["feeds"].(map[string]any)
	if !ok {
		return // the walker reports the main file's feeds
	}
	for _, f := range files {
		for _, name := range sortedKeys(f.feeds) {
			if first, dup := feedFiles[name]; dup {
				errs.add(&Error{File: f.file, Key: keyString([]string{"feeds", name}), Msg: "already defined in " + first})
				continue
			}
			feeds[name] = f.feeds[name]
			feedFiles[name] = f.file
			org.set([]string{"feeds", name}, origin{name: f.file})
		}
	}
}

// readYAML reads and parses one YAML file.
func readYAML(path string) (map[string]any, *Error) {
	b, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return parseYAML(path, b)
}

// MaxFileBytes caps the main config file and each feed file: a path
// mistaken for a config file (a device, a log) is an error, not a
// process out of memory.
const MaxFileBytes = capread.Config

// readConfigFile reads one config file, within MaxFileBytes.
func readConfigFile(path string) ([]byte, *Error) {
	b, err := capread.File(path, MaxFileBytes, "a config file")
	var tl *capread.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, &Error{File: path, Msg: "larger than " + capread.Size(tl.Limit) + ", the limit for a config file", Err: err}
	case err != nil:
		return nil, &Error{File: path, Msg: "cannot read: " + ioMessage(err), Err: err}
	}
	return b, nil
}

// parseYAML parses one file's YAML. An empty file is an empty mapping.
func parseYAML(path string, b []byte) (map[string]any, *Error) {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, &Error{File: path, Msg: "invalid YAML: " + yamlMessage(err), Err: err}
	}
	if m == nil {
		return map[string]any{}, nil
	}
	return copyTree(m).(map[string]any), nil
}

var (
	yamlPrefix   = regexp.MustCompile(`^yaml: (unmarshal errors:\s*)?`)
	notMappingRE = regexp.MustCompile(`cannot unmarshal !!(\w+) .*`)
)

// yamlMessage trims the parser's message to its point, which starts with
// the line number.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = notMappingRE.ReplaceAllStringFunc(strings.TrimSpace(m), func(s string) string {
				tag := notMappingRE.FindStringSubmatch(s)[1]
				return "the document must be a mapping of keys to values, got " + yamlTagName(tag)
			})
		}
		return strings.Join(msgs, "; ")
	}
	return yamlPrefix.ReplaceAllString(err.Error(), "")
}

func yamlTagName(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "str":
		return "a string"
	case "int", "float":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "!!" + tag
}

// ioMessage drops the path from an I/O error when the message names the
// file anyway.
func ioMessage(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// copyTree deep-copies parsed YAML, turning every mapping into a
// map[string]any (YAML allows keys such as 1 or true).
func copyTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			out[k] = copyTree(v)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			out[fmt.Sprint(k)] = copyTree(v)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = copyTree(v)
		}
		return out
	}
	return v
}

// resolvePath makes p absolute, relative to base.
func resolvePath(base, p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	joined := filepath.Join(base, p)
	if abs, err := filepath.Abs(joined); err == nil {
		return abs
	}
	return joined
}
