package debpkg_test

// An external test: debcachetest reaches debpkg again through debcache
// and kernelpkg, which an internal test cannot import.

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/debcache/debcachetest"
	"github.com/ofsroot/ofsroot/pkg/debpkg"
)

// TestExtractKernelDeb unpacks the real kernel packages and compares
// every entry with what dpkg -x made.
func TestExtractKernelDeb(t *testing.T) {
	testenv.SkipIfShort(t, "unpacks a 400 MB kernel package twice")
	testenv.NeedTools(t, "dpkg")
	deb := debcachetest.Kernel(t, "armmp").Deb // the smaller one
	tmp := t.TempDir()
	want, got := filepath.Join(tmp, "want"), filepath.Join(tmp, "got")
	if out, err := exec.Command("dpkg", "-x", deb, want).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x: %v\n%s", err, out)
	}
	if err := debpkg.Extract(deb, got); err != nil {
		t.Fatal(err)
	}
	debpkg.CompareTrees(t, want, got)
}
