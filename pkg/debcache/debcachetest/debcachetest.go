// Package debcachetest gives tests the Debian downloads of package
// debcache: the current kernel of a board's flavour, fetched into the
// shared cache on first use (so a test runs on a fresh machine), once
// per test binary.
package debcachetest

import (
	"sync"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/debcache"
)

var (
	mu      sync.Mutex
	kernels = map[string]debcache.Kernel{}
)

// Kernel returns the current Debian kernel of flavour (a board's
// KernelFlavour: "amd64", "armmp"), fetched into debcache.CacheDir with the version apt finds.
// Skipped with -short; when it cannot be fetched the test is skipped,
// or fails under CI (testenv.SkipUnlessCI).
func Kernel(t testing.TB, flavour string) debcache.Kernel {
	t.Helper()
	testenv.SkipIfShort(t, "downloads and unpacks a Debian kernel package")
	mu.Lock()
	defer mu.Unlock()
	if k, ok := kernels[flavour]; ok {
		return k
	}
	boards, err := board.All()
	if err != nil {
		t.Fatal(err)
	}
	var b board.Board
	for _, c := range boards {
		if c.KernelFlavour == flavour {
			b = c
			break
		}
	}
	if b.Name == "" {
		t.Fatalf("debcachetest: no board has kernel flavour %q", flavour)
	}
	testenv.NeedTools(t, "apt-get", "apt-cache", "dpkg")
	cache, err := debcache.CacheDir()
	if err != nil {
		testenv.SkipUnlessCI(t, "no cache folder for the Debian kernel: %v", err)
	}
	k, err := debcache.FetchKernel(cache, b)
	if err != nil {
		testenv.SkipUnlessCI(t, "cannot fetch the Debian %s kernel: %v", flavour, err)
	}
	kernels[flavour] = k
	return k
}
