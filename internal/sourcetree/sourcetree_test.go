package sourcetree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a/b/c"), 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+ModulePath+"\n"), 0o644)
	// A nested module of another name is passed over.
	os.WriteFile(filepath.Join(src, "a/go.mod"), []byte("module example.com/other\n"), 0o644)
	if got, err := Find(filepath.Join(src, "a/b/c")); err != nil || got != src {
		t.Errorf("Find = %q, %v; want %q", got, err, src)
	}
	other := t.TempDir()
	if _, err := Find(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("outside the tree: %v", err)
	}
	// This package's own tree is found from here.
	if got, err := Find("."); err != nil || filepath.Base(got) == "sourcetree" {
		t.Errorf("own tree: %q, %v", got, err)
	}
	for in, want := range map[string]string{
		"module github.com/ofsroot/ofsroot\n":                ModulePath,
		"// c\nmodule \"github.com/ofsroot/ofsroot\" // x\n": ModulePath,
		"module   example.com/x\ngo 1.22\n":                  "example.com/x",
		"go 1.22\n":                                          "",
	} {
		if got := goModModule([]byte(in)); got != want {
			t.Errorf("goModModule(%q) = %q, want %q", in, got, want)
		}
	}
}
