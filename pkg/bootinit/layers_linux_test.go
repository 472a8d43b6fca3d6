package bootinit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/switchroot"
)

// testRoot makes an ext4 image of a small root and attaches it to a
// read-write loop device, as a real SD card would be.
func testRoot(t *testing.T) (img, loop string) {
	t.Helper()
	mountfstest.NeedTools(t, "mkfs.ext4", "losetup", "e2fsck")
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	for _, d := range []string{"etc", "sbin", "mnt", "dev", "proc", "sys", "run"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	os.WriteFile(filepath.Join(src, "etc/fstab"), []byte("/dev/vda / ext4 defaults 0 1\n/dev/vdb none swap sw 0 0\ntmpfs /tmp tmpfs size=1M 0 0\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sbin/real-init"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("/sbin/real-init", filepath.Join(src, "sbin/init"))
	img = filepath.Join(dir, "root.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, "-L", "testroot", img, "16M")
	loop = attach(t, img)
	return img, loop
}

// attach puts img on a read-write loop device, detached (and its
// read-only flag cleared: the kernel keeps it across attachments) at the
// end of the test.
func attach(t *testing.T, img string) string {
	t.Helper()
	loop := strings.TrimSpace(run(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() { detach(loop) })
	if ro, err := blockdev.IsReadOnly(loop); err != nil || ro {
		blockdev.SetReadOnly(loop, false)
	}
	return loop
}

func detach(loop string) {
	blockdev.SetReadOnly(loop, false)
	exec.Command("losetup", "-d", loop).Run()
}

// settle ends every use of the device before its image is hashed: each
// mount is unmounted for real (not lazily: a lazy unmount can still be
// writing when the hash is taken), innermost first, the loop device is
// detached and everything synced. A mount that will not go fails the
// test.
func settle(t *testing.T, loop string, mounts ...string) {
	t.Helper()
	for _, m := range mounts {
		if err := unix.Unmount(m, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Fatalf("umount %s: %v", m, err)
		}
	}
	detach(loop)
	unix.Sync()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func sha(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

func testBoot(t *testing.T, loop string, cfg cmdline.Config) (*boot, string) {
	log, _ := testLogger()
	tmp := t.TempDir()
	b := &boot{
		log:   log,
		x:     &Executor{Log: log, Now: monotonic},
		cfg:   cfg,
		paths: layout{ro: tmp + "/ro", rw: tmp + "/rw", newRoot: tmp + "/new", run: tmp + "/run"},
		root:  blockdev.Device{Path: loop, FSType: "ext4"},
	}
	b.status.Version = 1
	return b, tmp
}

// TestProtectedLayersForReal builds the protected root from a real ext4
// device in a private mount namespace and checks the layout, then that
// the device was not written.
func TestProtectedLayersForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	before := sha(t, img)

	cfg := cmdline.Default()
	cfg.Overlay, cfg.Size, cfg.Root = cmdline.OverlayOn, cmdline.Size{Percent: 10}, "LABEL=testroot"
	b, _ := testBoot(t, loop, cfg)
	steps := append([]Step{b.writeProtect(), b.mountRealRoot(b.paths.ro, true)}, b.overlaySteps()...)
	if err := b.x.Run(steps...); err != nil {
		t.Fatal(err)
	}
	if err := b.x.Run(append(b.moveLayersSteps(), b.rewriteFstab())...); err != nil {
		t.Fatal(err)
	}
	for _, s := range b.x.Steps {
		if s.Error != "" {
			t.Errorf("step %q failed: %s", s.Name, s.Error)
		}
	}
	if b.status.Mode != bootstatus.Protected || b.newRoot != b.paths.newRoot {
		t.Fatalf("mode %q newRoot %q", b.status.Mode, b.newRoot)
	}
	nr := b.paths.newRoot

	// Writes land in the RAM layer only.
	if err := os.WriteFile(nr+"/hello", []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(nr + "/mnt/root-RW/upper/hello"); err != nil {
		t.Errorf("write not in the upper layer: %v", err)
	}
	if _, err := os.Stat(nr + "/mnt/root-RO/hello"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write reached the real root: %v", err)
	}
	if err := os.WriteFile(nr+"/mnt/root-RO/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("real root writable: %v", err)
	}

	// The RAM layer's size is the share of MemTotal asked for.
	var st unix.Statfs_t
	if err := unix.Statfs(nr+"/mnt/root-RW", &st); err != nil {
		t.Fatal(err)
	}
	want := b.memTotal / 100 * 10
	if got := st.Blocks * uint64(st.Bsize); got < want-uint64(st.Bsize) || got > want+uint64(st.Bsize) {
		t.Errorf("tmpfs size %d, want %d within a page", got, want)
	}

	// The fstab is rewritten, in RAM.
	fst, _ := os.ReadFile(nr + "/etc/fstab")
	for _, s := range []string{"# This fstab is in RAM", "\n/dev/vda /mnt/root-RO ext4 ro 0 0\n", "# (removed: swap)", "\ntmpfs /tmp tmpfs size=1M 0 0\n"} {
		if !strings.Contains(string(fst), s) {
			t.Errorf("fstab lacks %q:\n%s", s, fst)
		}
	}
	if _, err := os.Stat(nr + "/mnt/root-RW/upper/etc/fstab"); err != nil {
		t.Errorf("fstab not in the RAM layer: %v", err)
	}
	orig, _ := os.ReadFile(nr + "/mnt/root-RO/etc/fstab")
	if !strings.HasPrefix(string(orig), "/dev/vda / ext4 defaults") {
		t.Errorf("real fstab changed: %q", orig)
	}

	// The init is found through its absolute symbolic link, inside the
	// new root.
	if init, err := switchroot.FindInitIn(nr, switchroot.DefaultInits); err != nil || init != "/sbin/init" {
		t.Errorf("FindInitIn = %q, %v", init, err)
	}

	if !b.writeProtected {
		t.Errorf("the device was not write-protected")
	}
	settle(t, loop, nr+"/mnt/root-RW", nr+"/mnt/root-RO", nr)
	if after := sha(t, img); after != before {
		t.Errorf("the device was written: sha256 %s -> %s", before, after)
	}
	run(t, "e2fsck", "-fn", img)
}

// TestDegradedForReal: when the RAM layer cannot be built, the real root
// stays read-only and becomes /, and its fstab is guarded.
func TestDegradedForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	before := sha(t, img)
	cfg := cmdline.Default()
	cfg.Overlay = cmdline.OverlayOn
	b, _ := testBoot(t, loop, cfg)
	// A file where the RAM layer's folder should be: its mount fails.
	os.WriteFile(b.paths.rw, nil, 0o644)
	if err := b.x.Run(b.writeProtect(), b.mountRealRoot(b.paths.ro, true)); err != nil {
		t.Fatal(err)
	}
	// The boot's own layer steps: their failure degrades the boot
	// (OnError), which goes on.
	if err := b.x.Run(b.layerSteps()...); err != nil {
		t.Fatalf("a failed overlay stopped the boot: %v", err)
	}
	if b.status.Mode != bootstatus.Degraded || b.newRoot != b.paths.ro || len(b.status.Reasons) != 1 {
		t.Fatalf("status %+v newRoot %q", b.status, b.newRoot)
	}
	if err := b.x.Run(b.guardDegradedFstab()); err != nil {
		t.Fatal(err)
	}
	fst, _ := os.ReadFile(b.paths.ro + "/etc/fstab")
	if !strings.Contains(string(fst), "\n/dev/vda / ext4 ro 0 0\n") {
		t.Errorf("guarded fstab:\n%s", fst)
	}
	if err := os.WriteFile(b.newRoot+"/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("degraded root writable: %v", err)
	}
	settle(t, loop, b.paths.ro+"/etc/fstab", b.paths.ro)
	if after := sha(t, img); after != before {
		t.Errorf("the device was written in a degraded boot")
	}
}

// TestPlainReadWrite: overlayfs=no rw mounts the real root writable.
func TestPlainMountForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	_, loop := testRoot(t)
	for _, rw := range []bool{false, true} {
		cfg := cmdline.Default()
		cfg.ReadWrite = rw
		b, _ := testBoot(t, loop, cfg)
		if err := b.x.Run(b.mountRealRoot(b.paths.newRoot, !rw)); err != nil {
			t.Fatal(err)
		}
		err := os.WriteFile(b.paths.newRoot+"/x", nil, 0o644)
		if rw != (err == nil) {
			t.Errorf("rw=%v: write gave %v", rw, err)
		}
		if b.status.Root.Mount != "/" || b.status.Root.FSType != "ext4" {
			t.Errorf("status root %+v", b.status.Root)
		}
		unix.Unmount(b.paths.newRoot, unix.MNT_DETACH)
	}
}

// TestSettleCatchesAWrite: the "device not written" check above can
// fail: a real write through a read-write mount, settled the same way,
// changes the hash.
func TestSettleCatchesAWrite(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	before := sha(t, img)
	dir := t.TempDir()
	if err := unix.Mount(loop, dir, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/written", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle(t, loop, dir)
	if sha(t, img) == before {
		t.Errorf("a write through a read-write mount left the hash unchanged: the check cannot fail")
	}
}
