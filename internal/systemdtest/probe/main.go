// Command probe is the systemd test's hands inside the container. Run
// through nsenter in the sluice service's mount namespace, as the
// service's user or as root, it reports what the service could write and
// execute there; run in the container as the sluice user, it reads the
// agent's SQLite file. It prints JSON, one object per line, for the test
// to judge: it reports facts and decides nothing.
//
//	probe writable DIR     every directory and regular file under DIR that
//	                       access(2) says the caller may write (not /proc, /sys)
//	probe write DIR...     create and remove a file in each directory
//	probe exec DIR...      copy this program into each directory and run the copy
//	probe read FILE...     read each file (its length, never its content)
//	probe rows DB TABLE    the seq column of TABLE: count, distinct values,
//	                       min, max and the missing ranges
//	probe noop             exit 0 (what `exec` runs)
package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// result is one path's outcome for write, exec and read.
type result struct {
	Path string `json:"path"`
	OK   bool   `json:"ok"`
	Err  string `json:"err,omitempty"`
	Size int    `json:"size,omitempty"`
}

// rows describes a table's seq column.
type rows struct {
	Count    int64      `json:"count"`
	Distinct int64      `json:"distinct"`
	Min      int64      `json:"min"`
	Max      int64      `json:"max"`
	Missing  [][2]int64 `json:"missing,omitempty"` // first and last seq of each gap, at most maxGaps
	Err      string     `json:"err,omitempty"`
}

// maxGaps bounds the gaps rows lists.
const maxGaps = 10

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe writable|write|exec|read|rows|noop ARGS")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	args := os.Args[2:]
	switch os.Args[1] {
	case "noop":
	case "writable":
		if len(args) != 1 {
			fatal("writable takes one directory")
		}
		for _, p := range writable(args[0]) {
			out.Encode(result{Path: p, OK: true})
		}
	case "write":
		for _, dir := range args {
			out.Encode(tryWrite(dir))
		}
	case "exec":
		for _, dir := range args {
			out.Encode(tryExec(dir))
		}
	case "read":
		for _, f := range args {
			b, err := os.ReadFile(f)
			out.Encode(outcome(result{Path: f, Size: len(b)}, err))
		}
	case "rows":
		if len(args) != 2 {
			fatal("rows takes a database and a table")
		}
		r, err := seqRows(args[0], args[1])
		if err != nil {
			r.Err = err.Error()
		}
		out.Encode(r)
	default:
		fatal("unknown command " + os.Args[1])
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}

// outcome fills in r from err, which it reports without the path (r has
// it): "read-only file system", "permission denied".
func outcome(r result, err error) result {
	r.OK = err == nil
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		r.Err = pe.Err.Error()
	case err != nil:
		r.Err = err.Error()
	}
	return r
}

// writable walks root and lists what the caller may write. access(2)
// checks the mount's read-only flag as well as the file's mode and owner;
// directories it cannot read are skipped (it cannot have written into
// them by name either).
func writable(root string) []string {
	var found []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == "/proc" || p == "/sys" {
			return filepath.SkipDir
		}
		if err != nil {
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // devices, sockets, fifos, symlinks
		}
		if syscall.Access(p, 2 /* W_OK */) == nil {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// tryWrite creates (and removes) a file in dir; a regular file it opens
// for appending and closes, writing nothing.
func tryWrite(path string) result {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.Close()
		}
		return outcome(result{Path: path}, err)
	}
	name := filepath.Join(path, fmt.Sprintf(".probe-write-%d", os.Getpid()))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString("probe\n")
		f.Close()
		os.Remove(name)
	}
	return outcome(result{Path: path}, err)
}

// tryExec copies this program into dir and runs the copy. A copy that
// cannot be made is reported as such: the directory was not writable.
func tryExec(dir string) result {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	name := filepath.Join(dir, fmt.Sprintf(".probe-exec-%d", os.Getpid()))
	if err := copyFile(self, name); err != nil {
		return result{Path: dir, Err: "copy: " + outcome(result{}, err).Err}
	}
	defer os.Remove(name)
	return outcome(result{Path: dir}, exec.Command(name, "noop").Run())
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// seqRows reads the seq column of table, read-only.
func seqRows(db, table string) (rows, error) {
	var r rows
	if strings.ContainsAny(table, "\"\x00") {
		return r, errors.New("table name must not contain quotes")
	}
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return r, err
	}
	defer conn.Close()
	q, err := conn.Query(`SELECT seq FROM "` + table + `" ORDER BY seq`)
	if err != nil {
		return r, err
	}
	defer q.Close()
	prev := int64(-1)
	for q.Next() {
		var seq int64
		if err := q.Scan(&seq); err != nil {
			return r, err
		}
		if r.Count == 0 {
			r.Min = seq
		}
		r.Count++
		if seq != prev {
			r.Distinct++
			if prev >= 0 && seq > prev+1 && len(r.Missing) < maxGaps {
				r.Missing = append(r.Missing, [2]int64{prev + 1, seq - 1})
			}
		}
		prev, r.Max = seq, seq
	}
	return r, q.Err()
}
