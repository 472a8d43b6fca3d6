// Package kernelpkg opens a Debian linux-image package, given as its
// .deb or as the folder `dpkg -x` made of it: the one place the image
// builder, the boot-partition writer, the initramfs builder and the boot
// lab read a kernel package from.
//
// A folder is used as it is. A .deb is unpacked once, whole, into a
// cache keyed by its SHA-256 (CacheDir), and every later open of the same
// bytes reuses that folder: decompressing a kernel's data.tar.xz costs
// 10 to 15 s, reading the unpacked folder a fraction of that. An unpack
// is written to a temporary folder beside its final name, flushed to
// disk and renamed into place, so a folder in the cache is complete or
// absent, and two builds unpacking the same .deb at once both end with
// the one folder. Entries unused for PruneAge are removed.
package kernelpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/debpkg"
)

// Kernel is a kernel package's tree laid out as `dpkg -x` leaves a
// Debian linux-image package (or as an installed Debian root has it).
type Kernel struct {
	// Dir is the tree: the folder given, or the .deb unpacked in the
	// cache.
	Dir string
	// Version is the kernel release, e.g. 6.1.0-50-amd64.
	Version string
	// Vmlinuz is the kernel image, Dir/boot/vmlinuz-VERSION.
	Vmlinuz string
}

// PruneAge is how long a cached unpack may go unused before an unpack
// of another package removes it.
const PruneAge = 30 * 24 * time.Hour

// debMagic starts every ar archive, and so every .deb.
const debMagic = "!<arch>\n"

// CacheDir is the folder of unpacked packages: $OFSROOT_CACHE/kernels
// when OFSROOT_CACHE is set (the cache the boot lab and tests share),
// else kernels under the user's cache folder ($XDG_CACHE_HOME/ofsroot or
// ~/.cache/ofsroot). Removing it at any time is safe.
func CacheDir() (string, error) {
	if d := os.Getenv("OFSROOT_CACHE"); d != "" {
		return filepath.Abs(filepath.Join(d, "kernels"))
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "ofsroot", "kernels"), nil
}

// Open returns the folder holding the package's files: path itself when
// it is a folder, else the .deb at path unpacked in the cache (see the
// package comment). When the cache cannot be written, the .deb is
// unpacked into a temporary folder instead, which release removes;
// release is a no-op otherwise, and always safe to call. logf, if not
// nil, is told about an unpacking (the slow case).
//
// Side effects: for a .deb, reads it whole (to hash it) and, the first
// time, writes its files under CacheDir and removes entries there unused
// for PruneAge.
func Open(path string, logf func(string, ...any)) (dir string, release func(), err error) {
	nop := func() {}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	if fi.IsDir() {
		return path, nop, nil
	}
	sum, err := debSum(path)
	if err != nil {
		return "", nop, err
	}
	cache, err := CacheDir()
	if err == nil {
		err = os.MkdirAll(cache, 0o755)
	}
	if err != nil {
		logf("no cache for unpacked kernels (%v): unpacking %s into a temporary folder", err, path)
		return unpackTemp(path)
	}
	dir = filepath.Join(cache, sum)
	if _, err := os.Stat(dir); err == nil {
		now := time.Now()
		os.Chtimes(dir, now, now) // in use: not to be pruned
		return dir, nop, nil
	}
	logf("unpacking %s into %s (once: later builds from the same package reuse it)", path, dir)
	if err := unpackInto(path, dir); err != nil {
		return "", nop, err
	}
	prune(cache, sum, time.Now().Add(-PruneAge))
	return dir, nop, nil
}

// OpenKernel opens path as Open does and finds the one kernel in it
// (Find). release is as Open's.
func OpenKernel(path string, logf func(string, ...any)) (k Kernel, release func(), err error) {
	dir, release, err := Open(path, logf)
	if err != nil {
		return Kernel{}, release, err
	}
	k, err = find(dir)
	if err != nil {
		release()
		return Kernel{}, func() {}, fmt.Errorf("kernel %s: %w", path, err)
	}
	return k, release, nil
}

// debSum checks that path is a .deb and returns its SHA-256 in hex.
func debSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	defer f.Close()
	magic := make([]byte, len(debMagic))
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != debMagic {
		return "", fmt.Errorf("kernel %s is neither a folder nor a Debian package (.deb)", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("kernel %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// unpackInto unpacks the .deb into a temporary folder beside dir,
// flushes it to disk and renames it to dir. When another process renamed
// its own unpack there first, that one is kept.
func unpackInto(deb, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone after the rename; what is left if not
	if err := debpkg.Extract(deb, tmp); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	// A renamed folder must hold its files after a power cut, not
	// empty ones: flush the file system before the rename.
	if err := syncFS(tmp); err != nil {
		return fmt.Errorf("kernel cache %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another build unpacked the same package
		}
		return fmt.Errorf("kernel cache: %w", err)
	}
	return nil
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// unpackTemp unpacks the .deb into a temporary folder.
func unpackTemp(deb string) (string, func(), error) {
	nop := func() {}
	tmp, err := os.MkdirTemp("", "ofsroot-kernel-")
	if err != nil {
		return "", nop, err
	}
	release := func() { os.RemoveAll(tmp) }
	if err := debpkg.Extract(deb, tmp); err != nil {
		release()
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	return tmp, release, nil
}

// prune removes the cache entries (and interrupted unpacks) last used
// before cutoff, except keep. An entry in use was touched when opened,
// so it is never removed under a build.
func prune(cache, keep string, cutoff time.Time) {
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() == keep || !e.IsDir() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(cache, e.Name()))
		}
	}
}

// Find finds the one kernel under dir: boot/vmlinuz-VERSION (a kernel
// kept by a package upgrade as .ofsroot-old does not count). None, or
// more than one, is an error saying what to give instead.
func Find(dir string) (Kernel, error) {
	k, err := find(dir)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel %s: %w", dir, err)
	}
	return k, nil
}

func find(dir string) (Kernel, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	var found []Kernel
	for _, m := range matches {
		v := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if strings.HasSuffix(v, ".ofsroot-old") {
			continue
		}
		found = append(found, Kernel{Dir: dir, Version: v, Vmlinuz: m})
	}
	switch len(found) {
	case 0:
		return Kernel{}, errors.New("no boot/vmlinuz-VERSION in it: give a linux-image package (not the linux-image-FLAVOUR meta package, which only depends on one) or the folder `dpkg -x` made of it")
	case 1:
		return found[0], nil
	}
	var vs []string
	for _, k := range found {
		vs = append(vs, k.Version)
	}
	sort.Strings(vs)
	return Kernel{}, fmt.Errorf("more than one kernel in it (%s): give the one to use as a .deb or an unpacked folder", strings.Join(vs, ", "))
}

// DTB returns the device tree blob called name: under
// usr/lib/linux-image-VERSION/, or in a vendor folder below it as arm64
// packages have them (the first by name when several vendors have one).
func (k Kernel) DTB(name string) (string, error) {
	base := filepath.Join(k.Dir, "usr/lib/linux-image-"+k.Version)
	if p := filepath.Join(base, name); fileExists(p) {
		return p, nil
	}
	if m, _ := filepath.Glob(filepath.Join(base, "*", name)); len(m) > 0 {
		sort.Strings(m)
		return m[0], nil
	}
	return "", fmt.Errorf("kernel %s has no device tree %s under %s", k.Version, name, base)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
