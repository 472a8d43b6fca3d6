package tuck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
	"github.com/ofsroot/ofsroot/pkg/tuck/tucktest"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setup mounts, in a private namespace, a tmpfs at base (the sub-mount
// the swappable tree must sit under) and the old tree (version 1) at
// base/app, and returns the target.
func setup(t *testing.T) string {
	t.Helper()
	mountfstest.PrivateNamespace(t)
	base := t.TempDir()
	must(t, unix.Mount("tmpfs", base, "tmpfs", 0, "size=4m"))
	t.Cleanup(func() { unix.Unmount(base, unix.MNT_DETACH) })
	target := filepath.Join(base, "app")
	must(t, os.Mkdir(target, 0o755))
	must(t, unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"))
	must(t, os.WriteFile(target+"/version", []byte("1"), 0o644))
	must(t, unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	return target
}

// newTree is a folder holding version 2.
func newTree(t *testing.T) string {
	dir := t.TempDir()
	must(t, os.WriteFile(dir+"/version", []byte("2"), 0o644))
	must(t, os.WriteFile(dir+"/extra", []byte("new file"), 0o644))
	return dir
}

// reader loops over target in the test's namespace from another thread,
// reading the version file and listing the folder, until stopped. Every
// result that is not "1" or "2", any version going back, and any empty
// or missing moment is a failure.
type reader struct {
	reads1, reads2 atomic.Int64
	nProblems      atomic.Int64 // len(problems), for other goroutines
	problems       []string
	stop           atomic.Bool
	done           chan struct{}
}

func startReader(t *testing.T, target string) *reader {
	join := overlaydifftest.Joiner(t)
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := join(); err != nil {
			r.problems = append(r.problems, err.Error())
			return
		}
		seen2 := false
		for !r.stop.Load() {
			b, err := os.ReadFile(target + "/version")
			ents, derr := os.ReadDir(target)
			switch {
			case err != nil:
				r.problems = append(r.problems, "read: "+err.Error())
			case derr != nil || len(ents) == 0:
				r.problems = append(r.problems, fmt.Sprintf("listing: %d entries, %v", len(ents), derr))
			case string(b) == "1":
				if seen2 {
					r.problems = append(r.problems, "version 1 after version 2")
				}
				r.reads1.Add(1)
			case string(b) == "2":
				seen2 = true
				r.reads2.Add(1)
			default:
				r.problems = append(r.problems, fmt.Sprintf("version %q", b))
			}
			r.nProblems.Store(int64(len(r.problems)))
			if len(r.problems) > 20 {
				return
			}
		}
	}()
	return r
}

// swapUnderReader runs Swap while the reader loops: after it has read
// the old tree many times, and until it has read the new one many times.
func swapUnderReader(t *testing.T, o Options) *Result {
	t.Helper()
	r := startReader(t, o.Target)
	for r.reads1.Load() < 2000 && r.nProblems.Load() == 0 {
		select {
		case <-r.done:
		default:
			continue
		}
		break
	}
	res, err := Swap(o)
	for err == nil && r.reads2.Load() < 2000 {
		select {
		case <-r.done:
		default:
			continue
		}
		break
	}
	r.stop.Store(true)
	<-r.done
	if err != nil {
		t.Fatalf("Swap: %v", err)
	}
	if len(r.problems) > 0 {
		t.Errorf("the reader saw a gap: %q", r.problems)
	}
	t.Logf("%s: reader read version 1 %d times, version 2 %d times; %+v", o.Source, r.reads1.Load(), r.reads2.Load(), res)
	if b, _ := os.ReadFile(o.Target + "/extra"); string(b) != "new file" {
		t.Errorf("after the swap, extra = %q", b)
	}
	if err := os.WriteFile(o.Target+"/w", nil, 0o644); err == nil {
		t.Error("the new tree is writable")
	}
	return res
}

func mountsAt(t *testing.T, target string) int {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	must(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == target {
			n++
		}
	}
	return n
}

// needBeneath skips a test of the beneath path on a kernel without
// MOVE_MOUNT_BENEATH (a reason no CI machine on that kernel can meet).
func needBeneath(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "mounts for real in a private mount namespace")
	if ok, kernel := tucktest.Beneath(); !ok {
		testenv.SkipEvenInCI(t, "kernel %s refuses move_mount(MOVE_MOUNT_BENEATH) (Linux 6.5+): the beneath path cannot run; TestSwapOnThisKernel and TestSwapFallsBackWhenRefused run its fallback", kernel)
	}
}

// TestSwapOnThisKernel swaps with the default options: beneath where
// the kernel can (one mount left), else the fallback over the old tree
// (two mounts, and a note saying why).
func TestSwapOnThisKernel(t *testing.T) {
	beneath, kernel := tucktest.Beneath()
	target := setup(t)
	res := swapUnderReader(t, Options{Target: target, Source: newTree(t)})
	want, mounts := Beneath, 1
	if !beneath {
		want, mounts = Over, 2
		if !strings.Contains(res.Note, "move_mount(MOVE_MOUNT_BENEATH) refused") {
			t.Errorf("note %q does not say the kernel refused", res.Note)
		}
	}
	if res.Method != want {
		t.Errorf("kernel %s (beneath: %v): method %s (%s), want %s", kernel, beneath, res.Method, res.Note, want)
	}
	if n := mountsAt(t, target); n != mounts {
		t.Errorf("%d mounts at %s, want %d", n, target, mounts)
	}
}

// TestSwapFallsBackWhenRefused runs the automatic fallback on any
// kernel: the target is this thread's root (chroot), which no kernel
// mounts beneath (EINVAL, as a kernel older than 6.5 says for every
// target). Swap mounts over it instead and says why.
func TestSwapFallsBackWhenRefused(t *testing.T) {
	target := setup(t) // this thread has its own root and working folder (CLONE_NEWNS implies CLONE_FS)
	src := newTree(t)
	outside, err := os.Open("/")
	must(t, err)
	defer outside.Close()
	must(t, unix.Chdir(src))
	must(t, unix.Chroot(target))
	res, err := Swap(Options{Target: "/", Source: "."})
	// Back to the real root before checking anything.
	must(t, unix.Fchdir(int(outside.Fd())))
	must(t, unix.Chroot("."))
	if err != nil {
		t.Fatalf("Swap: %v", err)
	}
	if res.Method != Over || !strings.Contains(res.Note, "move_mount(MOVE_MOUNT_BENEATH) refused (invalid argument)") {
		t.Errorf("%+v, want the fallback over the old tree with a note", res)
	}
	if b, _ := os.ReadFile(target + "/version"); string(b) != "2" {
		t.Errorf("after the fallback, version = %q", b)
	}
	if n := mountsAt(t, target); n != 2 {
		t.Errorf("%d mounts at %s, want 2", n, target)
	}
}

// TestSwapBeneathFolder tucks a folder's tree under the old one: one
// mount left at the target.
func TestSwapBeneathFolder(t *testing.T) {
	needBeneath(t)
	target := setup(t)
	res := swapUnderReader(t, Options{Target: target, Source: newTree(t)})
	if res.Method != Beneath || res.Note != "" {
		t.Errorf("method %s (%s), want beneath", res.Method, res.Note)
	}
	if n := mountsAt(t, target); n != 1 {
		t.Errorf("%d mounts at %s, want 1: the old tree detached", n, target)
	}
}

// TestSwapBeneathSquashfs swaps in a squashfs image on a loop device.
func TestSwapBeneathSquashfs(t *testing.T) {
	needBeneath(t)
	mountfstest.NeedTools(t, "mksquashfs")
	target := setup(t)
	img := filepath.Join(t.TempDir(), "app-2.squashfs")
	if out, err := exec.Command("mksquashfs", newTree(t), img, "-quiet", "-noappend").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	res := swapUnderReader(t, Options{Target: target, Source: img})
	if res.Method != Beneath || !strings.HasPrefix(res.Loop, "/dev/loop") {
		t.Errorf("%+v", res)
	}
	if n := mountsAt(t, target); n != 1 {
		t.Errorf("%d mounts at %s, want 1", n, target)
	}
}

// TestSwapOverFallback is what an older kernel gets: the new tree over
// the old one, no gap either, two mounts at the target, and a note.
func TestSwapOverFallback(t *testing.T) {
	target := setup(t)
	res := swapUnderReader(t, Options{Target: target, Source: newTree(t), NoBeneath: true})
	if res.Method != Over || !strings.Contains(res.Note, "over the old one") {
		t.Errorf("%+v", res)
	}
	if n := mountsAt(t, target); n != 2 {
		t.Errorf("%d mounts at %s, want 2", n, target)
	}
}

// TestSwapErrors: what cannot be swapped is refused with a reason.
func TestSwapErrors(t *testing.T) {
	target := setup(t)
	if _, err := Swap(Options{Target: filepath.Dir(target) + "/nonexistent", Source: newTree(t)}); err == nil {
		t.Error("a missing target was accepted")
	}
	notMount := t.TempDir()
	if _, err := Swap(Options{Target: notMount, Source: newTree(t)}); err == nil || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("a plain folder: %v", err)
	}
	if _, err := Swap(Options{Target: target, Source: "/nonexistent.squashfs"}); err == nil {
		t.Error("a missing source was accepted")
	}
}
