package atomicfile

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Concurrent writers of one file each leave it whole: the last rename
// wins, and no temporary file is left behind.
func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			data := []byte{byte('a' + i), byte('a' + i), byte('a' + i)}
			if err := Write(path, data); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != got[1] || got[1] != got[2] {
		t.Errorf("content %q is not one writer's", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
}
