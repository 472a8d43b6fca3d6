package bootinit

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/kmod"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// A stale initramfs is one built for another kernel than the one that
// booted (a kernel updated by hand, an upgrade cut short): its modules
// do not load, and the overlay filesystem is missing. The real root,
// mounted read-only by then, usually has the running kernel's modules:
// overlayFromRoot loads overlay (and what it needs) from there, so the
// root stays protected; if it cannot, the caller fails closed as always.

// kernelRelease returns uname -r, "" if it cannot be read.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// overlayFromRoot loads the overlay module of the running kernel from
// the read-only real root and reports whether the kernel has the
// overlay filesystem afterwards. It says what it did on the console and
// in the status, loudly, since the initramfs needs rebuilding.
func (b *boot) overlayFromRoot() bool {
	release := kernelRelease()
	loaded, err := loadFromRoot(b.paths.ro, release, "overlay")
	if err == nil && !mountfs.KernelHas("overlay") {
		err = errors.New("loaded, but the kernel still lists no overlay filesystem")
	}
	for _, m := range loaded {
		b.status.Modules = append(b.status.Modules, bootstatus.Module{Name: m, Result: "loaded from the real root"})
	}
	if err != nil {
		b.log.Errorf("the initramfs has no overlay module for kernel %s, and loading it from the real root failed: %v. Rebuild the initramfs for this kernel (update-initramfs -u, or ofsroot initramfs --kernel-version %s)", release, err, release)
		return false
	}
	msg := fmt.Sprintf("STALE INITRAMFS: it has no overlay module for the running kernel %s; loaded %s from the real root's modules (read-only) and staying protected. Rebuild the initramfs for this kernel (update-initramfs -u, or ofsroot initramfs --kernel-version %s)",
		release, strings.Join(loaded, ", "), release)
	b.log.Loudf("%s", msg)
	b.status.Warnings = append(b.status.Warnings, msg)
	return true
}

// loadFromRoot resolves module name and its dependencies in the tree of
// kernel release under root (root/lib/modules/RELEASE or
// root/usr/lib/modules/RELEASE) and loads each module from there. A
// compressed module (.ko.xz, .ko.zst, .ko.gz: Debian 13, Ubuntu 23.10+) goes to
// the kernel as it is, for the kernel to decompress (the init carries no
// decoder; see modload.LoadCompressed), and its dependencies come from
// the root's modules.dep. It returns the names it loaded.
func loadFromRoot(root, release, name string) ([]string, error) {
	if release == "" {
		return nil, errors.New("cannot tell the running kernel's release (uname)")
	}
	tree, err := kmod.OpenTree(root, release)
	if err != nil {
		return nil, err
	}
	plan, err := tree.Plan([]string{name})
	if err != nil {
		return nil, err
	}
	if len(plan.Modules) == 0 {
		return nil, fmt.Errorf("the root's module tree says %s is built into the kernel", name)
	}
	var loaded []string
	for _, m := range plan.Modules {
		if v := strings.Fields(m.Info.Vermagic); len(v) > 0 && v[0] != release {
			return loaded, fmt.Errorf("%s was built for kernel %s, not %s", m.File, v[0], release)
		}
		load := modload.Load
		if kmod.Compressed(m.File) {
			load = modload.LoadCompressed
		}
		if err := load(m.File, ""); err != nil && !errors.Is(err, unix.EEXIST) {
			return loaded, err
		}
		loaded = append(loaded, m.Name)
	}
	return loaded, nil
}
