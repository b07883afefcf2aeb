package systemdtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The container tree comes from the Debian mirror this machine's apt
// already uses, so that it works wherever apt does.

// defaultMirror is used when no apt source names the suite.
const defaultMirror = "http://deb.debian.org/debian"

// aptSources reads the apt source files in the order apt does: the main
// list, then sources.list.d by name.
func aptSources(etc string) []aptFile {
	var files []aptFile
	add := func(p string) {
		if b, err := os.ReadFile(p); err == nil {
			files = append(files, aptFile{name: p, data: b})
		}
	}
	add(filepath.Join(etc, "apt", "sources.list"))
	d, _ := filepath.Glob(filepath.Join(etc, "apt", "sources.list.d", "*"))
	slices.Sort(d)
	for _, p := range d {
		if strings.HasSuffix(p, ".list") || strings.HasSuffix(p, ".sources") {
			add(p)
		}
	}
	return files
}

type aptFile struct {
	name string // ends in .sources for the deb822 format
	data []byte
}

// debianMirror returns the URI of the first binary ("deb") source that
// serves suite, from one-line (.list) or deb822 (.sources) files; "" if
// none does. Options in brackets and disabled entries are skipped.
func debianMirror(files []aptFile, suite string) string {
	for _, f := range files {
		var uri string
		if strings.HasSuffix(f.name, ".sources") {
			uri = mirrorDeb822(string(f.data), suite)
		} else {
			uri = mirrorOneLine(string(f.data), suite)
		}
		if uri != "" {
			return uri
		}
	}
	return ""
}

// mirrorOneLine reads lines like
// "deb [signed-by=/k.gpg] http://deb.debian.org/debian bookworm main".
func mirrorOneLine(data, suite string) string {
	for line := range strings.Lines(data) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options end at the first field ending in "]".
			i := slices.IndexFunc(f, func(s string) bool { return strings.HasSuffix(s, "]") })
			if i < 0 {
				continue
			}
			f = f[i+1:]
		}
		if len(f) >= 2 && f[1] == suite {
			return strings.TrimSuffix(f[0], "/")
		}
	}
	return ""
}

// mirrorDeb822 reads stanzas of "Key: value" lines separated by blank
// lines; a value may continue on lines starting with a space.
func mirrorDeb822(data, suite string) string {
	for stanza := range strings.SplitSeq(strings.ReplaceAll(data, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		var last string
		for line := range strings.Lines(stanza) {
			line = strings.TrimRight(line, "\n")
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") ||
			strings.EqualFold(fields["enabled"], "no") ||
			!slices.Contains(strings.Fields(fields["suites"]), suite) {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return strings.TrimSuffix(uris[0], "/")
		}
	}
	return ""
}

func TestDebianMirror(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []aptFile
		want  string
	}{
		{"none", nil, ""},
		{"one-line", []aptFile{{"sources.list", []byte(
			"# comment\ndeb-src http://src.example/debian bookworm main\n" +
				"deb http://mirror.example/debian/ bookworm main contrib\n")}}, "http://mirror.example/debian"},
		{"one-line options", []aptFile{{"a.list", []byte(
			"deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://m.example/debian bookworm main\n")}}, "https://m.example/debian"},
		{"one-line other suite first", []aptFile{{"a.list", []byte(
			"deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n" +
				"deb http://m.example/debian bookworm-updates main\ndeb http://m.example/debian bookworm main\n")}}, "http://m.example/debian"},
		{"deb822", []aptFile{{"debian.sources", []byte(
			"Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\n" +
				"Suites: bookworm bookworm-updates\nComponents: main\n\n" +
				"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n")}}, "http://deb.debian.org/debian"},
		{"deb822 disabled and deb-src", []aptFile{{"x.sources", []byte(
			"Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n\n" +
				"Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n" +
				"types: deb deb-src\nuris:\n http://on.example/debian\nsuites: bookworm\n")}}, "http://on.example/debian"},
		{"first file wins", []aptFile{
			{"sources.list", []byte("deb http://first.example/debian bookworm main\n")},
			{"z.sources", []byte("Types: deb\nURIs: http://second.example/debian\nSuites: bookworm\n")},
		}, "http://first.example/debian"},
		{"no such suite", []aptFile{{"sources.list", []byte("deb http://m.example/debian trixie main\n")}}, ""},
		{"broken", []aptFile{{"a.list", []byte("deb [oops http://m.example bookworm\ndeb\n")}, {"b.sources", []byte(":\n\n \nSuites\n")}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := debianMirror(tc.files, "bookworm"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzDebianMirror(f *testing.F) {
	f.Add([]byte("deb [a=b] http://m/debian bookworm main\n"), true)
	f.Add([]byte("Types: deb\nURIs: http://m/debian\nSuites: bookworm\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, oneLine bool) {
		name := "f.sources"
		if oneLine {
			name = "f.list"
		}
		got := debianMirror([]aptFile{{name, data}}, "bookworm")
		if got != "" && !strings.Contains(string(data), got) {
			t.Errorf("mirror %q is not in the input", got)
		}
	})
}
