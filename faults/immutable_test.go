package faults

// Making a directory read-only for root. The suite runs as root, and
// chmod does not stop root (CAP_DAC_OVERRIDE). The immutable attribute
// does: with chattr +i on a directory nothing can be created, removed or
// renamed in it, and on a file every write fails with EPERM, even through
// a file descriptor opened before (Linux checks it on write since 5.3).
// That is what the SQLite sink sees from a directory remounted read-only
// (where the error is EROFS): its open database, WAL and shared-memory
// files refuse writes, and no journal file can be created.

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// chattr runs chattr on paths.
func chattr(flag string, paths ...string) error {
	out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput()
	if err != nil {
		return &chattrError{err: err, out: string(out)}
	}
	return nil
}

type chattrError struct {
	err error
	out string
}

func (e *chattrError) Error() string { return "chattr: " + e.err.Error() + ": " + e.out }

// freeze makes dir and every file in it immutable, and registers the
// thaw with t.Cleanup so that the temporary directory can be removed
// whatever happens. It skips the test where chattr cannot do that (not
// installed, a file system without the attribute, no
// CAP_LINUX_IMMUTABLE).
func freeze(t *testing.T, dir string) (thaw func()) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{dir}
	for _, e := range entries {
		if e.Type().IsRegular() {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	thawed := false
	thaw = func() {
		if thawed {
			return
		}
		thawed = true
		if err := chattr("-i", paths...); err != nil {
			t.Errorf("thaw %s: %v", dir, err)
		}
	}
	if err := chattr("+i", paths...); err != nil {
		_ = chattr("-i", paths...)
		t.Skipf("cannot make %s immutable, so cannot make it read-only for root: %v", dir, err)
	}
	t.Cleanup(thaw)
	// Prove it took: root must not be able to create a file there.
	probe := filepath.Join(dir, "probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		os.Remove(probe)
		thaw()
		t.Fatalf("%s is immutable and root could still create a file in it", dir)
	}
	return thaw
}
