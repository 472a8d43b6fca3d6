package kernelpkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/debpkg"
)

// makeDeb writes a .deb holding files (name to content) and returns its
// path. truncate, if > 0, cuts the data member's bytes to that length,
// as a download cut short would.
func makeDeb(t *testing.T, files map[string]string, truncate int) string {
	t.Helper()
	var data bytes.Buffer
	gz := gzip.NewWriter(&data)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	member := data.Bytes()
	if truncate > 0 {
		member = member[:truncate]
	}
	var ar bytes.Buffer
	ar.WriteString(debMagic)
	add := func(name string, b []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(b))
		ar.Write(b)
		if len(b)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	add("debian-binary", []byte("2.0\n"))
	add("data.tar.gz", member)
	p := filepath.Join(t.TempDir(), "linux-image-test.deb")
	if err := os.WriteFile(p, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var kernelFiles = map[string]string{
	"boot/vmlinuz-6.1.0-9-test":                                     "kernel",
	"lib/modules/6.1.0-9-test/kernel/fs/overlay.ko":                 "module",
	"usr/lib/linux-image-6.1.0-9-test/vendor/board.dtb":             "dtb",
	"usr/lib/linux-image-6.1.0-9-test/top.dtb":                      "top",
	"usr/share/doc/linux-image-6.1.0-9-test/changelog.Debian.gz":    "doc",
	"usr/lib/linux-image-6.1.0-9-test/other-vendor/board-other.dtb": "x",
}

// logCount counts the unpackings Open reports.
type logCount struct {
	mu sync.Mutex
	n  int
}

func (l *logCount) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(format, "unpacking") {
		l.n++
	}
}

func TestOpenDebUnpacksOnce(t *testing.T) {
	deb := makeDeb(t, kernelFiles, 0)
	cache := t.TempDir()
	t.Setenv("OFSROOT_CACHE", cache)
	var log logCount
	k, release, err := OpenKernel(deb, log.logf)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if k.Version != "6.1.0-9-test" || !strings.HasPrefix(k.Dir, filepath.Join(cache, "kernels")+"/") {
		t.Fatalf("got %+v, want version 6.1.0-9-test in %s/kernels", k, cache)
	}
	for name, want := range kernelFiles {
		got, err := os.ReadFile(filepath.Join(k.Dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	// The release of a cached folder leaves it for the next build.
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		t.Fatalf("release removed the cached folder: %v", err)
	}
	k2, _, err := OpenKernel(deb, log.logf)
	if err != nil || k2 != k {
		t.Fatalf("second open: %+v, %v; want %+v", k2, err, k)
	}
	if log.n != 1 {
		t.Errorf("%d unpackings for two opens of the same .deb, want 1", log.n)
	}
	// Another .deb of different bytes is another entry.
	other := makeDeb(t, map[string]string{"boot/vmlinuz-6.1.0-10-test": "k2"}, 0)
	k3, _, err := OpenKernel(other, log.logf)
	if err != nil || k3.Dir == k.Dir || k3.Version != "6.1.0-10-test" {
		t.Fatalf("other .deb: %+v, %v", k3, err)
	}
}

func TestOpenParallel(t *testing.T) {
	deb := makeDeb(t, kernelFiles, 0)
	t.Setenv("OFSROOT_CACHE", t.TempDir())
	dirs := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], _, errs[i] = Open(deb, nil)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("open %d: %s, %v; want %s", i, dirs[i], errs[i], dirs[0])
		}
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "boot/vmlinuz-6.1.0-9-test")); err != nil {
		t.Error(err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dirs[0]), "*.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary unpacks left behind: %v", left)
	}
}

// TestOpenCutDebLeavesNoEntry: an unpack that fails halfway must not
// leave a folder that a later open takes for the package. Writing
// straight to the final name would (the first half of the files under
// the package's hash): shown by unpacking the cut package in place.
func TestOpenCutDebLeavesNoEntry(t *testing.T) {
	files := map[string]string{"boot/vmlinuz-6.1.0-9-test": strings.Repeat("k", 1<<16)}
	for i := 0; i < 50; i++ {
		files[fmt.Sprintf("lib/modules/6.1.0-9-test/m%02d.ko", i)] = strings.Repeat(fmt.Sprint(i), 1<<12)
	}
	full := makeDeb(t, files, 0)
	fi, _ := os.Stat(full)
	cut := makeDeb(t, files, int(fi.Size())/2)
	cache := t.TempDir()
	t.Setenv("OFSROOT_CACHE", cache)

	// Without the temporary folder: half a tree at the final name.
	sum, err := debSum(cut)
	if err != nil {
		t.Fatal(err)
	}
	naive := filepath.Join(t.TempDir(), sum)
	if err := debpkg.Extract(cut, naive); err == nil {
		t.Fatal("the cut package unpacked without an error")
	}
	if _, err := os.Stat(naive); err != nil {
		t.Fatalf("the fault did not show: an in-place unpack left nothing (%v)", err)
	}

	if _, _, err := Open(cut, nil); err == nil {
		t.Fatal("Open of a cut package: no error")
	}
	left, _ := os.ReadDir(filepath.Join(cache, "kernels"))
	if len(left) != 0 {
		t.Errorf("the failed unpack left %d entries in the cache: %v", len(left), left)
	}
	if _, _, err := Open(cut, nil); err == nil {
		t.Fatal("a second Open of the cut package found a cached folder")
	}
}

func TestOpenNoCacheFallsBackToTemp(t *testing.T) {
	deb := makeDeb(t, kernelFiles, 0)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	t.Setenv("OFSROOT_CACHE", notDir) // kernels/ cannot be made under a file
	var said string
	dir, release, err := Open(deb, func(f string, a ...any) { said = fmt.Sprintf(f, a...) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(said, "no cache for unpacked kernels") {
		t.Errorf("log: %q", said)
	}
	if _, err := os.Stat(filepath.Join(dir, "boot/vmlinuz-6.1.0-9-test")); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("release left the temporary folder %s (%v)", dir, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Setenv("OFSROOT_CACHE", t.TempDir())
	tmp := t.TempDir()
	notDeb := filepath.Join(tmp, "kernel.deb")
	os.WriteFile(notDeb, []byte("not a package"), 0o644)
	meta := makeDeb(t, map[string]string{"usr/share/doc/linux-image-amd64/copyright": "c"}, 0)
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(tmp, "nope"), "no such file"},
		{notDeb, "neither a folder nor a Debian package"},
		{meta, "linux-image-test.deb: no boot/vmlinuz-VERSION in it: give a linux-image package (not the linux-image-FLAVOUR meta package"},
		{tmp, tmp + ": no boot/vmlinuz-VERSION in it"},
	} {
		_, release, err := OpenKernel(tc.path, nil)
		release()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenKernel(%s): %v; want %q", tc.path, err, tc.want)
		}
	}
}

func TestPrune(t *testing.T) {
	cache := t.TempDir()
	old, used, keep := filepath.Join(cache, "old"), filepath.Join(cache, "used"), filepath.Join(cache, "keep")
	for _, d := range []string{old, used, keep, filepath.Join(cache, "x.tmp-1")} {
		os.MkdirAll(filepath.Join(d, "boot"), 0o755)
	}
	long := time.Now().Add(-2 * PruneAge)
	for _, d := range []string{old, keep, filepath.Join(cache, "x.tmp-1")} {
		os.Chtimes(d, long, long)
	}
	prune(cache, "keep", time.Now().Add(-PruneAge))
	for d, want := range map[string]bool{old: false, used: true, keep: true, filepath.Join(cache, "x.tmp-1"): false} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

// TestOpenTouchesEntry: a cached entry used now must not be pruned by
// another build's unpack.
func TestOpenTouchesEntry(t *testing.T) {
	deb := makeDeb(t, kernelFiles, 0)
	t.Setenv("OFSROOT_CACHE", t.TempDir())
	dir, _, err := Open(deb, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * PruneAge)
	os.Chtimes(dir, long, long)
	if _, _, err := Open(deb, nil); err != nil {
		t.Fatal(err)
	}
	other := makeDeb(t, map[string]string{"boot/vmlinuz-6.1.0-10-test": "k2"}, 0)
	if _, _, err := Open(other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("an entry opened just now was pruned: %v", err)
	}
}

func TestFindAndDTB(t *testing.T) {
	dir := t.TempDir()
	for name, content := range kernelFiles {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "boot/vmlinuz-6.1.0-8-test.ofsroot-old"), nil, 0o644)
	k, err := Find(dir)
	if err != nil || k.Version != "6.1.0-9-test" || k.Vmlinuz != filepath.Join(dir, "boot/vmlinuz-6.1.0-9-test") {
		t.Fatalf("Find: %+v, %v", k, err)
	}
	for name, want := range map[string]string{
		"top.dtb":         "usr/lib/linux-image-6.1.0-9-test/top.dtb",
		"board.dtb":       "usr/lib/linux-image-6.1.0-9-test/vendor/board.dtb",
		"board-other.dtb": "usr/lib/linux-image-6.1.0-9-test/other-vendor/board-other.dtb",
	} {
		if got, err := k.DTB(name); err != nil || got != filepath.Join(dir, want) {
			t.Errorf("DTB(%s) = %s, %v; want %s", name, got, err, want)
		}
	}
	if _, err := k.DTB("nosuch.dtb"); err == nil || !strings.Contains(err.Error(), "has no device tree nosuch.dtb") {
		t.Errorf("DTB(nosuch.dtb): %v", err)
	}
	os.WriteFile(filepath.Join(dir, "boot/vmlinuz-6.1.0-10-test"), nil, 0o644)
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "more than one kernel in it (6.1.0-10-test, 6.1.0-9-test)") {
		t.Errorf("two kernels: %v", err)
	}
}
