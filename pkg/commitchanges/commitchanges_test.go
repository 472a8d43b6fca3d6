package commitchanges

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), mode))
	must(t, os.Chmod(p, mode))
}

// protectedRoot builds what a protected boot has: a real root on ext4
// mounted read-only, a tmpfs upper layer and the overlay of both; then
// makes the same scripted changes through the overlay.
func protectedRoot(t *testing.T) (lower, upper, merged string) {
	t.Helper()
	lower, upper, merged, _ = protectedRootImage(t)
	return lower, upper, merged
}

// protectedRootImage is protectedRoot, also giving the real root's ext4
// image file (the loop device's backing file).
func protectedRootImage(t *testing.T) (lower, upper, merged, image string) {
	t.Helper()
	mountfstest.PrivateNamespace(t)
	tree := t.TempDir()
	write(t, tree+"/etc/fstab", "old fstab\n", 0o644)
	write(t, tree+"/etc/hostname", "box\n", 0o644)
	write(t, tree+"/etc/gone", "bye\n", 0o644)
	write(t, tree+"/var/lib/app/a", "a\n", 0o644)
	write(t, tree+"/var/lib/app/b", "b\n", 0o644)
	must(t, os.Symlink("/etc/hostname", tree+"/link"))
	lower, image = overlaydifftest.Ext4(t, tree)

	rw := t.TempDir()
	must(t, unix.Mount("tmpfs", rw, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { unix.Unmount(rw, unix.MNT_DETACH) })
	upper, merged = rw+"/upper", t.TempDir()
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(rw+"/work", 0o755))
	must(t, unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+rw+"/work"))
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })

	m := merged
	write(t, m+"/etc/new", "new\n", 0o640)
	must(t, os.Chown(m+"/etc/new", 1000, 1001))
	must(t, unix.Lsetxattr(m+"/etc/new", "user.note", []byte("kept"), 0))
	write(t, m+"/etc/fstab", "new fstab\n", 0o644)
	must(t, os.Chmod(m+"/etc/hostname", 0o600))
	write(t, m+"/opt/app/bin/run", "#!/bin/sh\n", 0o755)
	must(t, unix.Chmod(m+"/opt/app/bin/run", 0o4755)) // set-user-ID
	must(t, os.Remove(m+"/link"))
	must(t, os.Symlink("/etc/fstab", m+"/link"))
	must(t, os.Remove(m+"/etc/gone"))
	must(t, os.RemoveAll(m+"/var/lib/app"))
	write(t, m+"/var/lib/app/b", "b2\n", 0o644)
	write(t, m+"/var/lib/app/c", "c\n", 0o644)
	write(t, m+"/etc/not-chosen", "no\n", 0o644)
	write(t, m+"/new-unchosen", "no\n", 0o644)
	return lower, upper, merged, image
}

var chosen = []string{"/etc/new", "/etc/fstab", "etc/hostname", "/opt/app/bin/run", "/link", "/etc/gone", "/var/lib/app"}

// TestCommitChosen keeps chosen changes and checks the real root changed
// by exactly them, with owners, modes, xattrs and symlinks kept, and is
// read-only again.
func TestCommitChosen(t *testing.T) {
	lower, upper, merged := protectedRoot(t)
	before := overlaydifftest.Snapshot(t, lower)
	mergedView := overlaydifftest.Snapshot(t, merged)

	plan, err := Commit(Options{Lower: lower, Upper: upper, Paths: chosen, DryRun: true})
	must(t, err)
	wantPlan := []string{"M /etc/fstab (content)", "D /etc/gone", "M /etc/hostname (mode)", "A /etc/new", "M /link (target)",
		"A /opt/", "A /opt/app/", "A /opt/app/bin/", "A /opt/app/bin/run", "O /var/lib/app/", "D /var/lib/app/a", "M /var/lib/app/b (content)", "A /var/lib/app/c"}
	checkPlan(t, plan, wantPlan)
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, lower)) // dry run: nothing

	plan, err = Commit(Options{Lower: lower, Upper: upper, Paths: chosen})
	must(t, err)
	checkPlan(t, plan, wantPlan)
	after := overlaydifftest.Snapshot(t, lower)
	overlaydifftest.Expect(t, before, after, "~/etc/fstab", "-/etc/gone", "~/etc/hostname", "+/etc/new", "~/link",
		"+/opt", "+/opt/app", "+/opt/app/bin", "+/opt/app/bin/run", "-/var/lib/app/a", "~/var/lib/app/b", "+/var/lib/app/c")
	// Each committed entry is now in the real root as the merged view
	// had it: owner, mode, xattrs, content, symlink target.
	for _, p := range []string{"/etc/fstab", "/etc/hostname", "/etc/new", "/link", "/opt/app", "/opt/app/bin/run", "/var/lib/app/b", "/var/lib/app/c"} {
		if after[p] != mergedView[p] {
			t.Errorf("%s in the real root: %s\nin the merged view: %s", p, after[p], mergedView[p])
		}
	}
	if !strings.Contains(after["/etc/new"], "uid=1000 gid=1001") || !strings.Contains(after["/etc/new"], `user.note="kept"`) || !strings.Contains(after["/opt/app/bin/run"], "mode=104755") {
		t.Errorf("attributes lost: %s; %s", after["/etc/new"], after["/opt/app/bin/run"])
	}
	if err := os.WriteFile(lower+"/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("the real root is writable after commit: %v", err)
	}
	// What was kept is no longer a difference; the rest still is.
	rest, err := overlaydiff.Diff(lower, upper, overlaydiff.Options{})
	must(t, err)
	checkPlan(t, rest, []string{"A /etc/not-chosen", "A /new-unchosen", "O /var/lib/app/"})
}

// TestCommitPowerCut stops a commit where a power cut would hurt most,
// after the new file is written and before it is renamed: the old file
// is intact, what came before is complete, the root is read-only again.
func TestCommitPowerCut(t *testing.T) {
	lower, upper, _ := protectedRoot(t)
	crashAfterTemp = "/etc/hostname"
	defer func() { crashAfterTemp = "" }()
	_, err := Commit(Options{Lower: lower, Upper: upper, Paths: []string{"/etc"}})
	if !errors.Is(err, errCrash) {
		t.Fatalf("Commit = %v, want the simulated power cut", err)
	}
	if b, _ := os.ReadFile(lower + "/etc/hostname"); string(b) != "box\n" {
		t.Errorf("hostname %q: torn or replaced", b)
	}
	if b, _ := os.ReadFile(lower + "/etc/fstab"); string(b) != "new fstab\n" {
		t.Errorf("fstab (before the cut) %q", b)
	}
	if _, err := os.Stat(lower + "/etc/new"); err == nil {
		t.Error("/etc/new (after the cut) was committed")
	}
	temps, _ := filepath.Glob(lower + "/etc/" + TempPrefix + "hostname-*")
	if len(temps) != 1 {
		t.Errorf("temporary files %q, want one", temps)
	}
	if err := os.WriteFile(lower+"/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("the real root is writable after a failed commit: %v", err)
	}
	// Power back: the same commit again completes and clears the
	// leftover temporary file.
	crashAfterTemp = ""
	if _, err := Commit(Options{Lower: lower, Upper: upper, Paths: []string{"/etc"}}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(lower + "/etc/hostname"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("hostname after the second commit: %v %v, want mode 0600", st, err)
	}
	if temps, _ := filepath.Glob(lower + "/etc/" + TempPrefix + "*"); len(temps) != 0 {
		t.Errorf("temporary files left: %q", temps)
	}
	if _, err := os.Stat(lower + "/etc/new"); err != nil {
		t.Errorf("/etc/new not committed the second time: %v", err)
	}
}

// TestApplyIsOnDiskWhenItReturns cuts the power the moment Apply
// returns: it copies the real root's device as it is then (the loop
// device's backing file holds exactly what the filesystem sent it) and
// mounts the copy, as the next boot would after replaying the journal.
// The real root is mounted with commit=300 and noauto_da_alloc, so ext4
// writes nothing of its own accord in the seconds the test takes: only
// Apply's fsyncs of the files and their folders put the changes on the
// device.
func TestApplyIsOnDiskWhenItReturns(t *testing.T) {
	mountfstest.NeedTools(t, "e2fsck", "losetup")
	lower, upper, merged, image := protectedRootImage(t)
	must(t, unix.Unmount(merged, 0)) // the real root changes under no overlay
	plan, err := Plan(Options{Lower: lower, Upper: upper, Paths: chosen})
	must(t, err)
	if err := unix.Mount("", lower, "", unix.MS_REMOUNT, "commit=300,noauto_da_alloc"); err != nil {
		t.Fatalf("remount %s read-write with commit=300: %v", lower, err)
	}
	defer unix.Mount("", lower, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	before := overlaydifftest.Snapshot(t, lower)
	must(t, Apply(lower, upper, plan))
	cut := filepath.Join(t.TempDir(), "cut.img")
	data, err := os.ReadFile(image) // the power cut
	must(t, err)
	must(t, os.WriteFile(cut, data, 0o644))
	applied := overlaydifftest.Snapshot(t, lower)

	// The next boot: fsck replays the journal (exit 1: fixed), then
	// the root is mounted.
	if out, err := exec.Command("e2fsck", "-fy", cut).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -fy of the cut copy: %v\n%s", err, out)
		}
	}
	dev := testenv.Loop(t, cut, "--read-only")
	mnt := t.TempDir()
	must(t, unix.Mount(dev, mnt, "ext4", unix.MS_RDONLY, ""))
	defer unix.Unmount(mnt, 0)
	after := overlaydifftest.Snapshot(t, mnt)
	var lost []string
	for p, want := range applied {
		if after[p] != want {
			lost = append(lost, fmt.Sprintf("%s: %q after the cut, %q when Apply returned (%q before)", p, after[p], want, before[p]))
		}
	}
	for p := range after {
		if _, ok := applied[p]; !ok {
			lost = append(lost, p+": back after the cut")
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("a power cut right after Apply returned lost %d changes:\n%s", len(lost), strings.Join(lost, "\n"))
	}
}

func TestPlanErrors(t *testing.T) {
	if _, err := Plan(Options{Lower: "/", Upper: "/"}); err == nil {
		t.Error("no paths accepted")
	}
	if _, err := Plan(Options{Lower: "/nonexistent", Upper: t.TempDir(), Paths: []string{"/a"}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing lower: %v", err)
	}
}

func checkPlan(t *testing.T, got []overlaydiff.Change, want []string) {
	t.Helper()
	var s []string
	for _, c := range got {
		s = append(s, c.String())
	}
	if strings.Join(s, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
}

// TestApplyNodes commits a FIFO and a device node. Syncing a node by
// opening it blocked for ever on the FIFO (no writer comes): without the
// fix this test hangs until go test's timeout.
func TestApplyNodes(t *testing.T) {
	testenv.NeedRoot(t, "mknod of a device node and chown to its owner")
	lower, upper := t.TempDir(), t.TempDir()
	must(t, unix.Mkfifo(filepath.Join(upper, "pipe"), 0o640))
	must(t, unix.Mknod(filepath.Join(upper, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, Apply(lower, upper, []overlaydiff.Change{
		{Path: "/pipe", Kind: overlaydiff.Added},
		{Path: "/null", Kind: overlaydiff.Added},
	}))
	for _, name := range []string{"pipe", "null"} {
		want, err := os.Lstat(filepath.Join(upper, name))
		must(t, err)
		fi, err := os.Lstat(filepath.Join(lower, name))
		if err != nil || fi.Mode() != want.Mode() || fi.Mode().Type() == 0 {
			t.Errorf("%s: %v, %v; want %v", name, fi.Mode(), err, want.Mode())
		}
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(lower, "null"), &st))
	if st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: device %d:%d, want 1:3", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if left, _ := filepath.Glob(filepath.Join(lower, TempPrefix+"*")); len(left) > 0 {
		t.Errorf("temporary entries left: %v", left)
	}
}
