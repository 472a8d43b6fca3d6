package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// staleRoot builds a root image (in runDir/name) with the probe and, of
// the running kernel's modules, only the package's modules.* files and
// overlay's folder;
// edit, if set, then changes that lib/modules/VERSION folder.
func staleRoot(t *testing.T, s *bootlab.Setup, name string, edit func(mods string)) string {
	t.Helper()
	dir := filepath.Join(runDir, name)
	tree := filepath.Join(dir, "root")
	os.RemoveAll(tree)
	if err := bootlab.WriteRootTree(tree, s.Probe); err != nil {
		t.Fatal(err)
	}
	v := s.Kernel.Version
	src := filepath.Join(s.Kernel.Dir, "lib/modules", v)
	mods := filepath.Join(tree, "lib/modules", v)
	os.MkdirAll(filepath.Join(mods, "kernel/fs"), 0o755)
	files, _ := filepath.Glob(filepath.Join(src, "modules.*"))
	sh(t, "cp", append(append([]string{"-a"}, files...), mods)...)
	sh(t, "cp", "-a", filepath.Join(src, "kernel/fs/overlayfs"), filepath.Join(mods, "kernel/fs/"))
	if edit != nil {
		edit(mods)
	}
	img := filepath.Join(dir, "root.ext4")
	if err := bootlab.MakeExt4(bootlab.Ext4{Dir: tree, SizeBytes: bootlab.RootFSBytes, Label: bootlab.RootLabel, UUID: bootlab.RootUUID}, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestStaleInitramfs: an initramfs without the overlay module (as one
// built for another kernel, or cut short) on a root that has the running
// kernel's overlay.ko: the init loads it from the real root's
// /lib/modules/$(uname -r), read-only, says so, and boots protected.
// TestDegraded is the same initramfs on a root without modules: there it
// fails closed.
func TestStaleInitramfs(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-x86_64")
	s := l.setup
	initrd, _ := l.initrd(t, variant{without: []string{"overlay"}})
	img := staleRoot(t, s, "stale", nil)
	run := runBoot(t, s, bootlab.RunSpec{Initrd: initrd, Image: img, Append: []string{"root=/dev/vda", "overlayfs=yes"}})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	assertHas(t, run.Console, "STALE INITRAMFS")
	assertHas(t, run.Console, "loaded overlay from the real root")
	assertImageProtected(t, run, "/dev/vda", "ext4")
	assertImageUnchanged(t, run)
	st := run.Report.Status
	if st == nil || !strings.Contains(strings.Join(st.Warnings, "\n"), "STALE INITRAMFS") {
		t.Errorf("status warnings lack the stale initramfs: %+v", st)
	}
	found := false
	for _, m := range st.Modules {
		found = found || (m.Name == "overlay" && m.Result == "loaded from the real root")
	}
	if !found || st.Mode != bootstatus.Protected {
		t.Errorf("status: mode %s, modules %+v", st.Mode, st.Modules)
	}
}

// TestStaleCompressedModule: the same stale initramfs on a root whose
// overlay module is compressed, as Debian 13 and Ubuntu install them
// (overlay.ko.xz, CRC32, 1 MiB dictionary, and depmod's modules.dep).
// The init carries no decoder: it reads the dependencies from
// modules.dep and hands the file to the kernel to decompress
// (finit_module, MODULE_INIT_COMPRESSED_FILE). Debian 12's kernel, the
// lab's, has no CONFIG_MODULE_DECOMPRESS and refuses: the boot must fail
// closed, loudly, naming the module and what to do.
func TestStaleCompressedModule(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-x86_64")
	s := l.setup
	initrd, _ := l.initrd(t, variant{without: []string{"overlay"}})
	img := staleRoot(t, s, "stale-xz", func(mods string) {
		ko, _ := filepath.Glob(filepath.Join(mods, "kernel/fs/overlayfs/overlay.ko"))
		if len(ko) != 1 {
			t.Fatalf("no overlay.ko in %s", mods)
		}
		sh(t, "xz", "--check=crc32", "--lzma2=dict=1MiB", ko[0])
		// Kernel packages ship no modules.dep: an installed system's
		// comes from depmod, run here as the package's postinst would.
		sh(t, "depmod", "-b", filepath.Dir(filepath.Dir(filepath.Dir(mods))), filepath.Base(mods))
		if dep, _ := os.ReadFile(filepath.Join(mods, "modules.dep")); !strings.Contains(string(dep), "overlay.ko.xz:") {
			t.Fatal("modules.dep does not list overlay.ko.xz")
		}
	})
	run := runBoot(t, s, bootlab.RunSpec{Initrd: initrd, Image: img, Append: []string{"root=/dev/vda", "overlayfs=yes"}})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	t.Logf("%s", assertLine(t, run.Console, "overlay.ko.xz", "MODULE_INIT_COMPRESSED_FILE", "CONFIG_MODULE_DECOMPRESS", "Rebuild the initramfs"))
	assertLine(t, run.Console, "ofsroot: ", "DEGRADED")
	assertNot(t, run.Console, "STALE INITRAMFS", "a claim that overlay loaded")
	r := run.Report
	if root, ok := r.MountAt("/"); !ok || root.FSType == "overlay" || !root.ReadOnly() {
		t.Errorf("/ = %+v, want the root read-only (fail closed)", root)
	}
	if r.WriteRoot != "EROFS" {
		t.Errorf("writing / gave %q, want EROFS", r.WriteRoot)
	}
	if st := r.Status; st == nil || st.Mode != bootstatus.Degraded {
		t.Errorf("status %+v, want mode %s", st, bootstatus.Degraded)
	}
	assertImageUnchanged(t, run)
}
