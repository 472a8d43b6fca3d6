package diskimage

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBuildIDPlan(t *testing.T) {
	if a, b := buildID("seed 1"), buildID("seed 2"); a == b || len(a) != 32 || a != buildID("seed 1") {
		t.Errorf("buildID: %q %q", a, b)
	}
	dir := t.TempDir()
	mk := func(name string, f func(string) error) string {
		root := filepath.Join(dir, name)
		os.MkdirAll(root, 0o755)
		if err := f(root); err != nil {
			t.Fatal(err)
		}
		return root
	}
	for _, c := range []struct {
		name   string
		tree   func(string) error
		mkdirs []string
		keep   string
	}{
		{"empty", func(string) error { return nil }, []string{"etc", "etc/ofsroot"}, ""},
		{"etc", func(r string) error { return os.Mkdir(filepath.Join(r, "etc"), 0o755) }, []string{"etc/ofsroot"}, ""},
		{"own id", func(r string) error {
			os.MkdirAll(filepath.Join(r, "etc/ofsroot"), 0o755)
			return os.WriteFile(filepath.Join(r, BuildIDPath), []byte("mine\n"), 0o644)
		}, nil, "its own"},
		{"etc a link", func(r string) error { return os.Symlink("/etc", filepath.Join(r, "etc")) }, nil, "not a folder"},
	} {
		mkdirs, keep, err := buildIDPlan(mk(c.name, c.tree))
		if err != nil || !reflect.DeepEqual(mkdirs, c.mkdirs) || (c.keep == "") != (keep == "") || !strings.Contains(keep, c.keep) {
			t.Errorf("%s: %q %q %v, want %q %q", c.name, mkdirs, keep, err, c.mkdirs, c.keep)
		}
	}
	if got := squashfsBuildID([]string{"etc/ofsroot"}, "abc"); !reflect.DeepEqual(got, []string{"-p", "etc/ofsroot d 755 0 0", "-p", "etc/ofsroot/build-id f 644 0 0 echo abc"}) {
		t.Errorf("squashfsBuildID: %q", got)
	}
}
