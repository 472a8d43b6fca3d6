package diskimage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/debpkg"
)

// Kernel is a kernel tree laid out as `dpkg -x` leaves a Debian
// linux-image package (or as an installed Debian root has it).
type Kernel struct {
	Dir     string
	Version string
	Vmlinuz string
}

// FindKernel finds the one kernel under dir: boot/vmlinuz-VERSION with
// lib/modules/VERSION beside it. More than one is an error naming them.
func FindKernel(dir string) (Kernel, error) {
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
		return Kernel{}, fmt.Errorf("%s has no boot/vmlinuz-VERSION: give a linux-image .deb or the folder `dpkg -x` made of one", dir)
	case 1:
		return found[0], nil
	}
	var vs []string
	for _, k := range found {
		vs = append(vs, k.Version)
	}
	sort.Strings(vs)
	return Kernel{}, fmt.Errorf("%s has more than one kernel (%s): give the one to use as a .deb or an unpacked folder", dir, strings.Join(vs, ", "))
}

// DTB returns the device tree blob called name: under
// usr/lib/linux-image-VERSION/ (or a vendor folder below it), as Debian
// packages have it.
func (k Kernel) DTB(name string) (string, error) {
	base := filepath.Join(k.Dir, "usr/lib/linux-image-"+k.Version)
	for _, pat := range []string{filepath.Join(base, name), filepath.Join(base, "*", name)} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0], nil
		}
	}
	return "", fmt.Errorf("kernel %s has no device tree %s under %s", k.Version, name, base)
}

// OpenKernel returns the kernel in path, a linux-image .deb (only its
// boot/ and device trees are unpacked, into a temporary folder that
// cleanup removes) or a folder.
func OpenKernel(path string) (k Kernel, cleanup func(), err error) {
	st, err := os.Stat(path)
	if err != nil {
		return Kernel{}, nil, fmt.Errorf("kernel %s: %w", path, err)
	}
	if st.IsDir() {
		k, err := FindKernel(path)
		return k, func() {}, err
	}
	tmp, err := os.MkdirTemp("", "ofsroot-kernel-")
	if err != nil {
		return Kernel{}, nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	keep := func(name string) bool {
		return strings.HasPrefix(name, "boot/vmlinuz-") ||
			(strings.HasPrefix(name, "usr/lib/linux-image-") && strings.HasSuffix(name, ".dtb"))
	}
	if err := debpkg.ExtractFiltered(path, tmp, keep); err != nil {
		cleanup()
		return Kernel{}, nil, fmt.Errorf("unpacking kernel %s: %w", path, err)
	}
	k, err = FindKernel(tmp)
	if err != nil {
		cleanup()
		return Kernel{}, nil, fmt.Errorf("kernel package %s: %w", path, err)
	}
	return k, cleanup, nil
}
