// Package overlaydifftest helps tests that change a real root and must
// prove they changed exactly what was asked: snapshots of a file tree
// (type, mode, owner, content, symlink target, xattrs of every entry),
// their comparison, and an ext4 image on a loop device mounted read-only,
// as a device's real root would be.
package overlaydifftest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

// Snapshot describes every entry under dir by its path relative to dir.
func Snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "lost+found" && d.IsDir() {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " ->" + l
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		x, err := overlaydiff.Xattrs(p)
		if err != nil {
			return err
		}
		for _, n := range overlaydiff.XattrNames(x) {
			desc += fmt.Sprintf(" %s=%q", n, x[n])
		}
		out["/"+rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Changes lists how after differs from before: "+PATH" added, "-PATH"
// removed, "~PATH" different, sorted by path.
func Changes(before, after map[string]string) []string {
	var out []string
	for p, a := range after {
		if b, ok := before[p]; !ok {
			out = append(out, "+"+p)
		} else if a != b {
			out = append(out, "~"+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "-"+p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return overlaydiff.Less(out[i][1:], out[j][1:]) })
	return out
}

// Expect fails the test unless after differs from before by exactly want.
func Expect(t *testing.T, before, after map[string]string, want ...string) {
	t.Helper()
	got := Changes(before, after)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the tree changed by %q, want exactly %q", got, want)
		for _, p := range got {
			t.Logf("%s\n  before: %s\n  after:  %s", p, before[p[1:]], after[p[1:]])
		}
	}
}

// Ext4 makes an ext4 image holding tree, attaches it to a loop device and
// mounts it read-only at a new folder, in the test's private mount
// namespace (the caller must have called mountfstest.PrivateNamespace).
// It returns the mount point and the image; cleanup unmounts, detaches
// and checks the filesystem with e2fsck -fn.
func Ext4(t *testing.T, tree string) (mnt, image string) {
	t.Helper()
	mountfstest.NeedTools(t, "mkfs.ext4", "losetup", "e2fsck")
	dir := t.TempDir()
	image, mnt = filepath.Join(dir, "root.img"), filepath.Join(dir, "ro")
	run(t, "mkfs.ext4", "-q", "-F", "-d", tree, "-E", "root_owner=0:0", image, "32M")
	loop := strings.TrimSpace(run(t, "losetup", "--find", "--show", image))
	// A loop device keeps a read-only flag set by BLKROSET (blockdev
	// --setro) across detach and attach: whatever used this one before
	// must not make the root unwritable for maintenance.
	run(t, "blockdev", "--setrw", loop)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(loop, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		exec.Command("losetup", "-d", loop).Run()
		t.Fatalf("mount -o ro %s %s: %v", loop, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
		exec.Command("losetup", "-d", loop).Run()
		if out, err := exec.Command("e2fsck", "-fn", image).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -fn %s: %v\n%s", image, err, out)
		}
	})
	return mnt, image
}

// MountInfo returns the calling thread's mountinfo line for the mount
// at point ("" if none).
func MountInfo(t *testing.T, point string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == point {
			line = l
		}
	}
	return line
}

// ProgramsInto copies programs (host paths) and the shared libraries
// they need (from ldd) into root at the same paths, so that a chroot
// into root can run them.
func ProgramsInto(t *testing.T, root string, programs ...string) {
	t.Helper()
	mountfstest.NeedTools(t, "ldd")
	files := map[string]bool{}
	for _, p := range programs {
		files[p] = true
		for _, f := range strings.Fields(run(t, "ldd", p)) {
			if strings.HasPrefix(f, "/") {
				files[f] = true
			}
		}
	}
	for f := range files {
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// Joiner returns a function that moves the calling goroutine into the
// mount namespace of the thread Joiner was called on (a test's private
// namespace is that of its locked thread only). The goroutine stays
// locked to its thread, which Go discards when the goroutine ends.
func Joiner(t *testing.T) func() error {
	t.Helper()
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() error {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare(CLONE_FS): %w", err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return nil
	}
}
