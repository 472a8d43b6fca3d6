package debcache

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/sourcetree"
	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

// Kernel is one Debian linux-image package unpacked in the cache.
type Kernel struct {
	// Package is the Debian package name, e.g. linux-image-6.1.0-50-amd64.
	Package string
	// Version is the kernel release, e.g. 6.1.0-50-amd64.
	Version string
	// Deb is the downloaded .deb file.
	Deb string
	// Dir is the folder dpkg -x unpacked the package into.
	Dir string
	// Vmlinuz is the kernel image, Dir/boot/vmlinuz-VERSION.
	Vmlinuz string
}

// DTB returns the path of the device tree blob called name in the
// package, as kernelpkg.Kernel.DTB finds it.
func (k Kernel) DTB(name string) (string, error) {
	return kernelpkg.Kernel{Dir: k.Dir, Version: k.Version, Vmlinuz: k.Vmlinuz}.DTB(name)
}

// CacheDir returns the kernel cache folder: $OFSROOT_CACHE if set, else
// .cache/ at the module root (ignored by git). It creates the folder.
func CacheDir() (string, error) {
	dir := os.Getenv("OFSROOT_CACHE")
	if dir == "" {
		root, err := sourcetree.FromWorkingDir()
		if err != nil {
			return "", fmt.Errorf("kernel cache: %w; set OFSROOT_CACHE", err)
		}
		dir = filepath.Join(root, ".cache")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

// metaPackage is the Debian meta package that always depends on the
// current kernel of the flavour, qualified with the architecture when it
// is foreign to the host.
func metaPackage(b board.Board, hostArch string) string {
	name := "linux-image-" + b.KernelFlavour
	if b.DebianArch != hostArch {
		name += ":" + b.DebianArch
	}
	return name
}

var dependsKernel = regexp.MustCompile(`^\s*Depends:\s*(linux-image-[0-9][^\s:]*)(:[a-z0-9]+)?\s*$`)

// parseKernelDepends picks the versioned kernel package out of
// `apt-cache depends linux-image-FLAVOUR` output.
func parseKernelDepends(out string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := dependsKernel.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no \"Depends: linux-image-N...\" line in apt-cache output:\n%s", out)
}

func hostDebianArch() (string, error) {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg --print-architecture: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// FetchKernel returns board b's current Debian kernel, unpacked under
// cacheDir. It asks apt-cache which package the flavour's meta package
// depends on, downloads it with apt-get download into cacheDir, and
// unpacks it with dpkg -x into cacheDir/PACKAGE/. A package already
// unpacked there is reused. When apt-cache cannot answer (no package
// lists, offline) the newest kernel of the flavour already in the cache is
// used.
//
// Side effects: files under cacheDir; runs apt-cache, apt-get, dpkg. Holds
// an flock on cacheDir/.lock so parallel callers do not fetch twice.
func FetchKernel(cacheDir string, b board.Board) (Kernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, err
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return Kernel{}, err
	}
	unlock, err := Lock(cacheDir)
	if err != nil {
		return Kernel{}, err
	}
	defer unlock()

	hostArch, err := hostDebianArch()
	if err != nil {
		return Kernel{}, err
	}
	meta := metaPackage(b, hostArch)
	out, err := exec.Command("apt-cache", "depends", meta).CombinedOutput()
	var pkg string
	if err == nil {
		pkg, err = parseKernelDepends(string(out))
	} else {
		err = fmt.Errorf("apt-cache depends %s: %v: %s", meta, err, strings.TrimSpace(string(out)))
	}
	if err != nil {
		if k, ok := newestCached(cacheDir, b); ok {
			return k, nil
		}
		return Kernel{}, fmt.Errorf("board %s: %w (run scripts/setup-host.sh)", b.Name, err)
	}

	k := Kernel{
		Package: pkg,
		Version: strings.TrimPrefix(pkg, "linux-image-"),
		Dir:     filepath.Join(cacheDir, pkg),
	}
	k.Vmlinuz = filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Version)
	if k.Deb, _, err = fetchDeb(cacheDir, pkg, b.DebianArch, k.Dir, filepath.Join("boot", "vmlinuz-"+k.Version)); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

func findDeb(cacheDir, pkg, arch string) string {
	matches, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*_"+arch+".deb"))
	if len(matches) == 0 {
		return ""
	}
	sort.Strings(matches)
	return matches[len(matches)-1]
}

// newestCached finds an already unpacked kernel of b's flavour and
// architecture, for hosts without package lists.
func newestCached(cacheDir string, b board.Board) (Kernel, bool) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*-"+b.KernelFlavour))
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		pkg := filepath.Base(dirs[i])
		deb := findDeb(cacheDir, pkg, b.DebianArch)
		if deb == "" {
			continue
		}
		k := Kernel{Package: pkg, Version: strings.TrimPrefix(pkg, "linux-image-"), Deb: deb, Dir: dirs[i]}
		k.Vmlinuz = filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Version)
		if _, err := os.Stat(k.Vmlinuz); err == nil {
			return k, true
		}
	}
	return Kernel{}, false
}

// Lock takes the cache's lock (an exclusive flock on cacheDir/.lock),
// waiting for it, so that parallel test binaries and commands do not
// fetch or unpack the same package twice. Call the returned function to
// release it.
func Lock(cacheDir string) (func(), error) {
	path := filepath.Join(cacheDir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
