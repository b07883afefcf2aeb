package all_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/config"
	"github.com/sluicehq/sluice/sinks/all"
)

// Every type listed has a name of its own and a config struct the loader
// can use; a type added here with a broken struct fails here first.
func TestTypes(t *testing.T) {
	seen := make(map[string]bool)
	for _, typ := range all.Types {
		if typ.Name == "" || typ.NewConfig == nil || typ.New == nil {
			t.Errorf("incomplete type %+v", typ)
		}
		if seen[typ.Name] {
			t.Errorf("type %s is listed twice", typ.Name)
		}
		seen[typ.Name] = true
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte("feeds_dir: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadWithEnv(path, nil, all.Types.Configs()); err != nil {
		t.Fatal(err)
	}
}
