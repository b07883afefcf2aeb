package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/agent"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, line, lines string }{
		{"plain text, ünïcödé ✓", "plain text, ünïcödé ✓", "plain text, ünïcödé ✓"},
		{"red \x1b[31mX\x1b[0m", `red \x1b[31mX\x1b[0m`, `red \x1b[31mX\x1b[0m`},
		{"title \x1b]0;owned\a", `title \x1b]0;owned\a`, `title \x1b]0;owned\a`},
		{"c1 \u009b2J \u0085", `c1 \u009b2J \u0085`, `c1 \u009b2J \u0085`},
		{"two\nlines\r\n", `two\nlines\r\n`, "two\nlines\\r\n"},
		{"tab\there", `tab\there`, `tab\there`},
		{"del \x7f nul \x00", `del \x7f nul \x00`, `del \x7f nul \x00`},
		{"bidi \u202eevil\u202c", `bidi \u202eevil\u202c`, `bidi \u202eevil\u202c`},
		{"bad utf8 \xff\xc3", `bad utf8 \xff\xc3`, `bad utf8 \xff\xc3`},
		{`line protocol a\ b\,c="q\"x"`, `line protocol a\ b\,c="q\"x"`, `line protocol a\ b\,c="q\"x"`},
	} {
		if got := printable(tt.in); got != tt.line {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.line)
		}
		if got := printableLines(tt.in); got != tt.lines {
			t.Errorf("printableLines(%q) = %q, want %q", tt.in, got, tt.lines)
		}
	}
}

func TestPrintableJSON(t *testing.T) {
	in := map[string]string{"e": "a\x1b[2J\u009b\u0085\x7f\u202e✓\U000e0001"}
	var b bytes.Buffer
	jsonEncoder(&b).Encode(in)
	got := printableJSON(b.Bytes())
	if want := `"a\u001b[2J\u009b\u0085\u007f\u202e✓\udb40\udc01"`; !strings.Contains(string(got), want) {
		t.Errorf("printableJSON: %s; want it to hold %s", got, want)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["e"] != in["e"] {
		t.Errorf("the escaped JSON reads back as %q, %v", back, err)
	}
}

// terminalSafe reports whether s holds nothing a terminal would act on,
// keeping newlines if lines.
func terminalSafe(s string, lines bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && !(lines && r == '\n') {
			return false
		}
	}
	return utf8.ValidString(s)
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "a\x1b[31mb", "\u009b", "\xff", "x\ny\r", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := printable(s); !terminalSafe(got, false) {
			t.Errorf("printable(%q) = %q", s, got)
		}
		if got := printableLines(s); !terminalSafe(got, true) {
			t.Errorf("printableLines(%q) = %q", s, got)
		}
		b, _ := json.Marshal(s)
		got := printableJSON(b)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || !terminalSafe(string(got), false) {
			t.Errorf("printableJSON(%s) = %s (%v)", b, got, err)
		}
		var want string
		json.Unmarshal(b, &want)
		if back != want {
			t.Errorf("printableJSON changed %q into %q", want, back)
		}
	})
}

// hostile is an HTTP server on the agent's port that is not an honest
// agent: every string it sends tries to drive the terminal.
func hostile(t *testing.T) string {
	const evil = "\x1b]0;owned\a\x1b[2J\u009b31m"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		st := agent.Status{
			Feeds:         []agent.FeedStatus{{Name: "f" + evil, State: agent.FeedState("running" + evil), LastError: "oops" + evil}},
			ConfigError:   "line one" + evil + "\nline two" + evil,
			RestartNeeded: []string{"sinks" + evil},
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /api/v1/reload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(agent.ReloadResponse{Errors: []string{"bad" + evil, "worse" + evil}})
	})
	mux.HandleFunc("GET /api/v1/tap", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("feed") == "refuse" {
			http.Error(w, "no"+evil+"\nsecond line"+evil, http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "# note%s\nm,s=x%s v=1i 1\n", evil, evil)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestCLIEscapesWhatTheServerSends(t *testing.T) {
	addr := hostile(t)
	cfg := "-config=" + t.TempDir() + "/none.yaml" // no config: -addr says where
	for _, args := range [][]string{
		{"status", "-addr", addr, cfg},
		{"status", "-json", "-addr", addr, cfg},
		{"reload", "-addr", addr, cfg},
		{"tap", "f", "-addr", addr, cfg},
		{"tap", "refuse", "-addr", addr, cfg},
	} {
		var out, errOut bytes.Buffer
		run(args, &out, &errOut)
		for name, got := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
			if strings.ContainsAny(got, "\x1b\a\u009b") {
				t.Errorf("sluice %s: %s has raw control characters:\n%q", strings.Join(args, " "), name, got)
			}
		}
		if !strings.Contains(out.String()+errOut.String(), `\x1b]0;owned\a\x1b[2J`) && !strings.Contains(out.String(), `\u001b]0;owned\u0007\u001b[2J\u009b31m`) {
			t.Errorf("sluice %s: the escapes are not shown:\n%q\n%q", strings.Join(args, " "), out.String(), errOut.String())
		}
	}
}
