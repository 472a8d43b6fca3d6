package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

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
	dir := filepath.Join(runDir, "stale")
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
	img := filepath.Join(dir, "root.ext4")
	if err := bootlab.MakeExt4(bootlab.Ext4{Dir: tree, SizeBytes: bootlab.RootFSBytes, Label: bootlab.RootLabel, UUID: bootlab.RootUUID}, img); err != nil {
		t.Fatal(err)
	}
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
