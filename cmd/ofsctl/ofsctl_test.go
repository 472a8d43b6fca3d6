package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
	"github.com/ofsroot/ofsroot/pkg/tuck/tucktest"
)

func ofsctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e lockedBuffer
	code = program.Main(args, &o, &e)
	return code, o.String(), e.String()
}

// lockedBuffer is a buffer two writers may share: maint's notes and the
// goroutine os/exec runs to copy its command's output (a plain buffer
// loses lines to that race; a terminal or file would not).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHelp: every command has --help, exits 0 and prints its synopsis.
func TestHelp(t *testing.T) {
	for _, name := range []string{"status", "diff", "maint", "chroot", "commit", "guard", "tuck"} {
		if _, ok := program.Commands[name]; !ok {
			t.Errorf("no command %s", name)
			continue
		}
		code, _, errOut := ofsctl(t, name, "--help")
		if code != 0 || !strings.HasPrefix(errOut, "Usage: ofsctl "+name+" ") {
			t.Errorf("%s --help: exit %d, %q", name, code, errOut)
		}
	}
	for _, args := range [][]string{{"status", "extra"}, {"commit"}, {"tuck", "/only-one"}, {"guard", "x"}, {"diff", "--nope"}} {
		if code, _, _ := ofsctl(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)", args, code)
		}
	}
}

// TestStatusExitCodes runs status over fixture mount tables and status
// files: exit 0 protected, 3 plain, 4 degraded.
func TestStatusExitCodes(t *testing.T) {
	defer func(s rootstatus.Sources) { statusSources = s }(statusSources)
	dir := t.TempDir()
	for _, c := range []struct {
		name, mountinfo string
		mode            bootstatus.Mode
		code            int
	}{
		{"protected", "21 1 0:20 / / rw - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/nonexistent/upper,workdir=/x\n23 21 254:0 / /mnt/root-RO ro - ext4 /dev/vda ro\n", bootstatus.Protected, 0},
		{"plain", "21 1 254:0 / / ro - ext4 /dev/vda ro\n", bootstatus.Plain, 3},
		{"degraded", "21 1 254:0 / / ro - ext4 /dev/vda ro\n", bootstatus.Degraded, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			mi, sf := filepath.Join(dir, c.name+".mountinfo"), filepath.Join(dir, c.name+".json")
			must(t, os.WriteFile(mi, []byte(c.mountinfo), 0o644))
			must(t, bootstatus.WriteFile(sf, &bootstatus.Status{Version: 1, Mode: c.mode, Reasons: []string{"because"}}))
			statusSources = rootstatus.Sources{Mountinfo: mi, StatusFile: sf}
			code, out, _ := ofsctl(t, "status", "--json")
			var r rootstatus.Report
			if err := json.Unmarshal([]byte(out), &r); err != nil || code != c.code || r.Mode != c.mode {
				t.Errorf("exit %d mode %q (%v), want %d %s:\n%s", code, r.Mode, err, c.code, c.mode, out)
			}
			code, out, _ = ofsctl(t, "status")
			if code != c.code || !strings.HasPrefix(out, "mode:       "+string(c.mode)+"\n") {
				t.Errorf("text: exit %d:\n%s", code, out)
			}
		})
	}
}

// overlay mounts tmpfs lower and upper layers and an overlay of both in
// the test's private namespace.
func overlay(t *testing.T) (lower, upper, merged string) {
	mountfstest.PrivateNamespace(t)
	dir := t.TempDir()
	lower, rw, merged := dir+"/lower", dir+"/rw", dir+"/merged"
	for _, d := range []string{lower, rw, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	for _, d := range []string{lower, rw} {
		must(t, unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"))
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	}
	must(t, os.MkdirAll(lower+"/etc", 0o755))
	must(t, os.WriteFile(lower+"/etc/fstab", []byte("old\n"), 0o644))
	must(t, os.WriteFile(lower+"/etc/motd", []byte("hi\n"), 0o644))
	upper = rw + "/upper"
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(rw+"/work", 0o755))
	must(t, unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+rw+"/work"))
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	must(t, os.WriteFile(merged+"/etc/fstab", []byte("new\n"), 0o644))
	must(t, os.Remove(merged+"/etc/motd"))
	must(t, os.WriteFile(merged+"/added", []byte("a\n"), 0o644))
	return lower, upper, merged
}

// TestDiffAndCommit: diff lists the scripted changes exactly (text and
// JSON); commit --dry-run lists and changes nothing; commit keeps only
// what it is given.
func TestDiffAndCommit(t *testing.T) {
	lower, upper, _ := overlay(t)
	layers := []string{"--lower", lower, "--upper", upper}
	code, out, errOut := ofsctl(t, append([]string{"diff"}, layers...)...)
	if code != 0 || out != "A /added\nM /etc/fstab (content)\nD /etc/motd\n" {
		t.Errorf("diff: exit %d %q %q", code, out, errOut)
	}
	code, out, _ = ofsctl(t, append(append([]string{"diff", "--json"}, layers...), "/etc/motd")...)
	var d diffReport
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 || len(d.Changes) != 1 || d.Changes[0].String() != "D /etc/motd" || d.Changes[0].Whiteout != "chardev" || d.Changes[0].Type != overlaydiff.File {
		t.Errorf("diff --json /etc/motd: exit %d %v %s", code, err, out)
	}
	// The layers are tmpfs folders, not mount points of a real root:
	// commit makes the lower tmpfs writable (it is) for the moment.
	before := overlaydifftest.Snapshot(t, lower)
	code, out, errOut = ofsctl(t, append(append([]string{"commit", "--dry-run"}, layers...), "/etc")...)
	if code != 0 || out != "M /etc/fstab (content)\nD /etc/motd\n" || !strings.Contains(errOut, "dry run: 2 changes") {
		t.Errorf("commit --dry-run: exit %d %q %q", code, out, errOut)
	}
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, lower))
	code, out, errOut = ofsctl(t, append(append([]string{"commit"}, layers...), "/etc/fstab")...)
	if code != 0 || out != "M /etc/fstab (content)\n" {
		t.Errorf("commit: exit %d %q %q", code, out, errOut)
	}
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, lower), "~/etc/fstab")
	code, _, errOut = ofsctl(t, append(append([]string{"commit"}, layers...), "/etc/fstab")...)
	if code != 0 || !strings.Contains(errOut, "nothing to keep") {
		t.Errorf("commit again: exit %d %q", code, errOut)
	}
	// A typo is not "the same in the real root": it fails, as a usage
	// error, and nothing is written; a deleted file is still a change.
	code, _, errOut = ofsctl(t, append(append([]string{"commit"}, layers...), "/etc/fstba")...)
	if code != 2 || !strings.Contains(errOut, "/etc/fstba is neither in the RAM layer nor in the real root") {
		t.Errorf("commit of a mistyped path: exit %d %q", code, errOut)
	}
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, lower), "~/etc/fstab")
	code, out, errOut = ofsctl(t, append(append([]string{"commit", "--dry-run"}, layers...), "/etc/motd")...)
	if code != 0 || out != "D /etc/motd\n" {
		t.Errorf("commit --dry-run of a deleted file: exit %d %q %q", code, out, errOut)
	}
}

// TestMaint runs a command through maint in a real, read-only ext4 root:
// its exit code comes back and exactly its change is made.
func TestMaint(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "dash")
	tree := t.TempDir()
	dash, _ := exec.LookPath("dash")
	overlaydifftest.ProgramsInto(t, tree, dash)
	mnt, _ := overlaydifftest.Ext4(t, tree)
	before := overlaydifftest.Snapshot(t, mnt)
	defer func(r io.Reader) { maintStdin = r }(maintStdin)
	maintStdin = strings.NewReader("")
	code, out, errOut := ofsctl(t, "chroot", "--root", mnt, "--", dash, "-c", "echo kept > /note; echo done; exit 5")
	if code != 5 || out != "done\n" || !strings.Contains(errOut, "read-only again") {
		t.Errorf("chroot: exit %d %q %q", code, out, errOut)
	}
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, mnt), "+/note")
	if err := os.WriteFile(mnt+"/x", nil, 0o644); err == nil {
		t.Error("the root stayed writable")
	}

	// A root that was writable before (a plain rw boot) stays so, and
	// maint says that rather than "read-only again".
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = ofsctl(t, "maint", "--root", mnt, "--", dash, "-c", "true")
	if code != 0 || strings.Contains(errOut, "read-only again") || !strings.Contains(errOut, "was writable before the maintenance and stays writable") {
		t.Errorf("maint on a writable root: exit %d %q", code, errOut)
	}
	if err := os.WriteFile(mnt+"/x", nil, 0o644); err != nil {
		t.Errorf("the writable root became read-only: %v", err)
	}
	os.Remove(mnt + "/x")
	os.Remove(mnt + "/note")
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
}

// TestGuard: the shipped configuration parses, and --once reports the
// level with its exit code on a real tmpfs.
func TestGuard(t *testing.T) {
	code, out, errOut := ofsctl(t, "guard", "--check-config", "--config", "../../dist/ramguard.conf")
	if code != 0 || !strings.Contains(out, "path = /mnt/root-RW\n") {
		t.Errorf("dist/ramguard.conf: exit %d %q %q", code, out, errOut)
	}
	mountfstest.PrivateNamespace(t)
	dir := t.TempDir()
	layer := dir + "/rw"
	must(t, os.Mkdir(layer, 0o755))
	must(t, unix.Mount("tmpfs", layer, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { unix.Unmount(layer, unix.MNT_DETACH) })
	conf := dir + "/guard.conf"
	must(t, os.WriteFile(conf, []byte("path="+layer+"\nwarn_use=50%\nact_use=90%\n"), 0o644))
	for _, c := range []struct {
		kib  int
		code int
		out  string
	}{{100, 0, "ok\n"}, {600, 3, "warning\n"}, {950, 4, "action\n"}} {
		must(t, os.WriteFile(layer+"/fill", make([]byte, c.kib<<10), 0o644))
		code, out, errOut := ofsctl(t, "guard", "--config", conf, "--once")
		if code != c.code || out != c.out {
			t.Errorf("%d KiB of 1 MiB: exit %d %q %q, want %d %q", c.kib, code, out, errOut, c.code, c.out)
		}
	}
	// A missing file is a usage error (2), as in every command.
	if code, _, errOut := ofsctl(t, "guard", "--config", dir+"/missing.conf", "--once"); code != 2 || !strings.Contains(errOut, "missing.conf") {
		t.Errorf("missing config: exit %d %q", code, errOut)
	}
}

// TestTuck swaps a folder in under a mounted tree.
func TestTuck(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	base := t.TempDir()
	must(t, unix.Mount("tmpfs", base, "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount(base, unix.MNT_DETACH) })
	target := base + "/app"
	must(t, os.Mkdir(target, 0o755))
	must(t, unix.Mount("tmpfs", target, "tmpfs", 0, ""))
	must(t, os.WriteFile(target+"/v", []byte("1"), 0o644))
	src := t.TempDir()
	must(t, os.WriteFile(src+"/v", []byte("2"), 0o644))
	// The method is the one the kernel has: beneath (6.5+) or over.
	method := "(beneath)"
	if ok, _ := tucktest.Beneath(); !ok {
		method = "(over)"
	}
	code, out, errOut := ofsctl(t, "tuck", target, src)
	if code != 0 || !strings.HasPrefix(out, target+" now holds "+src+" "+method) {
		t.Errorf("tuck: exit %d %q %q, want %s", code, out, errOut, method)
	}
	if b, _ := os.ReadFile(target + "/v"); string(b) != "2" {
		t.Errorf("after tuck: %q", b)
	}
	if code, _, errOut := ofsctl(t, "tuck", src, target); code != 1 || !strings.Contains(errOut, "not a mount point") {
		t.Errorf("tuck onto a plain folder: exit %d %q", code, errOut)
	}
}
