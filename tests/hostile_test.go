package tests

// The hostile-card campaign (issue 9): damaged and hostile roots, bad
// protection words, low memory and power cuts. Each boot runs on its own
// copy of the disk, hashed before and after. For each protection a boot
// first shows the fault without it (the image is written, the memory
// runs out), so the campaign can fail.

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

const x86 = "qemu-x86_64"

// hostileImage copies the lab's root filesystem image for board into
// the test's folder and, if edit is set, edits the copy mounted
// read-write on the host.
func hostileImage(t *testing.T, l *lab, edit func(dir string) error) (img string, offset int64) {
	t.Helper()
	src, _ := l.setup.DefaultRoot()
	if src == l.setup.DiskImage {
		offset = l.setup.Layout.StartBytes
	}
	dir := filepath.Join(runDir, "hostile", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img = filepath.Join(dir, "root-"+filepath.Base(src))
	if err := bootlab.CopySparse(src, img); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		if err := bootlab.Edit(img, offset, edit); err != nil {
			t.Fatal(err)
		}
	}
	return img, offset
}

// hostileRun boots img on board (words after root=) and fails on a
// kernel panic or a recovered panic in the init; the probe's report is
// required unless noProbe.
func hostileRun(t *testing.T, l *lab, v variant, img string, noProbe bool, words ...string) *bootlab.Run {
	t.Helper()
	initrdPath, _ := l.initrd(t, v)
	_, root := l.setup.DefaultRoot()
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: append([]string{root}, words...)})
	assertNot(t, run.Console, "the init panicked", "a panic recovered in the init")
	if !noProbe && run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	return run
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("the hostile-card campaign makes images with loop devices and mount: run it as root (CI does)")
	}
}

// TestHostileJournal: a root left unclean by a power cut during a
// writable boot. A plain read-only boot replays the journal and writes
// the card (the fault); a protected boot write-protects the device,
// mounts it without replay and says so loudly; the card is unchanged.
func TestHostileJournal(t *testing.T) {
	t.Parallel()
	needRoot(t)
	l := getLab(t, x86)
	img, off := hostileImage(t, l, nil)
	if err := bootlab.MakeUnclean(img, off, func(dir string) error {
		return os.WriteFile(dir+"/etc/written-before-the-cut", []byte("x\n"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("plain ro replays (the fault)", func(t *testing.T) {
		t.Parallel()
		run := hostileRun(t, l, variant{}, img, false, "overlayfs=no", "ro")
		if run.ImageUnchanged() {
			t.Errorf("a plain ro boot of an unclean root left the card unchanged: the fault this campaign guards against did not happen")
		}
	})
	for _, word := range []string{"overlayfs=yes", "overlayfs=sandbox"} {
		t.Run(word, func(t *testing.T) {
			t.Parallel()
			v := variant{}
			if word == "overlayfs=sandbox" {
				v.apparmor = true
			}
			run := hostileRun(t, l, v, img, false, word)
			assertLine(t, run.Console, "UNCLEAN ROOT", "/dev/vda")
			assertHas(t, run.Console, "NOT replayed (mount option noload)")
			assertHas(t, run.Console, "boot once with overlayfs=no")
			assertLine(t, run.Console, "ofsroot: ", "blockdev --setro /dev/vda")
			if st := run.Report.Status; st == nil || !strings.Contains(st.Root.Options, "noload") || !strings.Contains(strings.Join(st.Warnings, " "), "UNCLEAN ROOT") {
				t.Errorf("status.json does not say the root was mounted without replay: %+v", st)
			}
			assertImageUnchanged(t, run)
		})
	}
}

// TestHostileErrors: a root with a damaged inode (the probe reads
// /etc/hostname, whose inode checksum is broken). A plain read-only boot
// records the error in the superblock (the fault); a protected boot
// writes nothing and still boots.
func TestHostileErrors(t *testing.T) {
	t.Parallel()
	needRoot(t)
	l := getLab(t, x86)
	img, off := hostileImage(t, l, nil)
	if err := bootlab.DamageInode(img, off, "/etc/hostname"); err != nil {
		t.Fatal(err)
	}
	t.Run("plain ro records the error (the fault)", func(t *testing.T) {
		t.Parallel()
		// The probe's report cannot be parsed (its hostname is an
		// error): the console lines are checked instead.
		run := hostileRun(t, l, variant{}, img, true, "overlayfs=no", "ro")
		assertHas(t, run.Console, "PROBE hostname=error: EBADMSG")
		assertHas(t, run.Console, "PROBE END")
		if run.ImageUnchanged() {
			t.Errorf("a plain ro boot reading a damaged inode left the card unchanged: the fault this campaign guards against did not happen")
		}
	})
	// The same damage, with the superblock asking for a panic on errors.
	panicImg := filepath.Join(filepath.Dir(img), "root-errors-panic.img")
	if err := bootlab.CopySparse(img, panicImg); err != nil {
		t.Fatal(err)
	}
	if err := bootlab.Debugfs(panicImg, off, "set_super_value errors 3"); err != nil {
		t.Fatal(err)
	}
	t.Run("errors=panic kept panics (the fault)", func(t *testing.T) {
		// rootflags=errors=panic is the user's explicit choice and is
		// kept: the damaged inode panics the kernel even on a read-only
		// mount of a write-protected device, and kernel.panic reboots
		// it. This is what the superblock's errors=panic would do
		// without the init's errors=continue.
		t.Parallel()
		initrdPath, _ := l.initrd(t, variant{})
		_, root := l.setup.DefaultRoot()
		run := bootUntil(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: panicImg,
			Append: []string{root, "overlayfs=yes", "rootflags=errors=panic"}}, "Rebooting in 10 seconds")
		assertHas(t, run.Console, "panic forced after error")
		assertHas(t, run.Console, "Rebooting in 10 seconds")
		assertImageUnchanged(t, run)
	})
	t.Run("superblock errors=panic protected", func(t *testing.T) {
		t.Parallel()
		run := hostileRun(t, l, variant{}, panicImg, true, "overlayfs=yes")
		assertLine(t, run.Console, "ofsroot: warning: ", "errors=panic", "errors=continue")
		assertHas(t, run.Console, "PROBE hostname=error: EBADMSG")
		assertHas(t, run.Console, "PROBE END")
		assertImageUnchanged(t, run)
	})
	t.Run("protected", func(t *testing.T) {
		t.Parallel()
		run := hostileRun(t, l, variant{}, img, true, "overlayfs=yes")
		assertHas(t, run.Console, "PROBE hostname=error: EBADMSG")
		assertHas(t, run.Console, "PROBE END")
		assertLine(t, run.Console, "ofsroot: ", "mode protected")
		assertImageUnchanged(t, run)
	})
}

// TestHostileProtectionWord: a mistyped protection word with rw (as
// Boundary-style boot arguments carry) protects; overlayfs=yes rw still
// mounts the real root read-only.
func TestHostileProtectionWord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		words      []string
		failClosed bool
	}{
		{[]string{"rw", "overlayfs=yse"}, true},
		{[]string{"overlayfs=yes", "rw"}, false},
	} {
		words := tc.words
		t.Run(strings.Join(words, "_"), func(t *testing.T) {
			t.Parallel()
			run := boot(t, bootCase{board: x86, words: words})
			assertProtected(t, run, "/dev/vda", 50)
			if tc.failClosed {
				assertHas(t, run.Console, "Failing closed: the root is PROTECTED")
			}
			assertLine(t, run.Console, "ofsroot: warning: ", "rw ignored")
			assertImageUnchanged(t, run)
		})
	}
}

// hostileFstab is one /etc/fstab a card may hold; check looks at the
// fstab the real init got.
type hostileFstab struct {
	name  string
	make  func(etc string) error
	check func(t *testing.T, fstab string)
	// refused: the init must say it ignored the file.
	refused bool
}

func fstabMounts(want string) func(t *testing.T, fstab string) {
	return func(t *testing.T, fstab string) {
		t.Helper()
		if !strings.Contains(fstab, "/mnt/root-RO ext4 ro") || (want != "" && !strings.Contains(fstab, want)) {
			t.Errorf("the real init got this fstab:\n%s\nwant a read-only /mnt/root-RO line and %q", fstab, want)
		}
		if strings.Contains(fstab, "rootfs") || strings.Contains(fstab, "devtmpfs") {
			t.Errorf("the initramfs's own mount table became the fstab:\n%s", fstab)
		}
	}
}

var hostileFstabs = []hostileFstab{
	{"fifo", func(etc string) error { return unix.Mkfifo(etc+"/fstab", 0o644) }, fstabMounts(""), true},
	{"link to /dev/zero", func(etc string) error { return os.Symlink("/dev/zero", etc+"/fstab") }, fstabMounts(""), false},
	{"char device", func(etc string) error {
		return unix.Mknod(etc+"/fstab", unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5)))
	}, fstabMounts(""), true},
	{"block device", func(etc string) error {
		return unix.Mknod(etc+"/fstab", unix.S_IFBLK|0o644, int(unix.Mkdev(254, 0)))
	}, fstabMounts(""), true},
	{"socket", func(etc string) error {
		l, err := net.Listen("unix", etc+"/fstab")
		if err != nil {
			return err
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		return l.Close()
	}, fstabMounts(""), true},
	{"huge", func(etc string) error {
		f, err := os.Create(etc + "/fstab")
		if err == nil {
			err = f.Truncate(2 << 20)
			f.Close()
		}
		return err
	}, fstabMounts(""), true},
	{"absolute link", func(etc string) error {
		data, err := os.ReadFile(etc + "/fstab")
		if err == nil {
			err = os.WriteFile(etc+"/fstab.real", data, 0o644)
		}
		if err == nil {
			os.Remove(etc + "/fstab")
			err = os.Symlink("/etc/fstab.real", etc+"/fstab")
		}
		return err
	}, fstabMounts(bootlab.FstabLines[len(bootlab.FstabLines)-1]), false},
	{"link climbing out", func(etc string) error {
		os.Remove(etc + "/fstab")
		return os.Symlink("../../../../../../proc/self/mounts", etc+"/fstab")
	}, fstabMounts(""), false},
}

// TestHostileFstab: whatever /etc/fstab is, the protected boot reaches
// the real init with a sane fstab, without hanging, and the card is
// unchanged.
func TestHostileFstab(t *testing.T) {
	t.Parallel()
	needRoot(t)
	l := getLab(t, x86)
	for _, hf := range hostileFstabs {
		t.Run(hf.name, func(t *testing.T) {
			t.Parallel()
			img, _ := hostileImage(t, l, func(dir string) error {
				if hf.name != "absolute link" && hf.name != "link climbing out" {
					if err := os.Remove(dir + "/etc/fstab"); err != nil {
						return err
					}
				}
				return hf.make(dir + "/etc")
			})
			run := hostileRun(t, l, variant{}, img, false, "overlayfs=yes")
			hf.check(t, run.Report.Fstab)
			if hf.refused {
				assertLine(t, run.Console, "ofsroot: warning: ", "ignoring the root's /etc/fstab")
			}
			assertImageUnchanged(t, run)
		})
	}
}

// TestHostileSandboxFiles: the sandbox reads /etc/hostname and finds the
// init through links, inside the root: an absolute /sbin/init link, a
// relative hostname link, and (second boot) a FIFO as /etc/hostname,
// which falls back to the default hostname instead of hanging.
func TestHostileSandboxFiles(t *testing.T) {
	t.Parallel()
	needRoot(t)
	l := getLab(t, x86)
	for _, tc := range []struct {
		name, want string
		edit       func(dir string) error
	}{
		{"links", "fw-by-link", func(dir string) error {
			if err := os.MkdirAll(dir+"/usr/lib/fw", 0o755); err != nil {
				return err
			}
			if err := os.Rename(dir+"/sbin/init", dir+"/usr/lib/fw/init"); err != nil {
				return err
			}
			if err := os.Symlink("/usr/lib/fw/init", dir+"/sbin/init"); err != nil {
				return err
			}
			os.Remove(dir + "/etc/hostname")
			if err := os.WriteFile(dir+"/usr/lib/fw/hostname", []byte("fw-by-link\n"), 0o644); err != nil {
				return err
			}
			return os.Symlink("../../../../../usr/lib/fw/hostname", dir+"/etc/hostname")
		}},
		{"hostname fifo", "sandbox", func(dir string) error {
			os.Remove(dir + "/etc/hostname")
			return unix.Mkfifo(dir+"/etc/hostname", 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, _ := hostileImage(t, l, tc.edit)
			words := []string{"overlayfs=sandbox", "ofs-sandbox-restart=0"}
			if tc.name == "hostname fifo" {
				// The init must pass the FIFO by; the probe, as the
				// firmware, then blocks reading it itself (a firmware's
				// own business), so the boot is stopped once the
				// sandbox has started.
				initrdPath, _ := l.initrd(t, variant{apparmor: true})
				_, root := l.setup.DefaultRoot()
				run := bootUntil(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: append([]string{root}, words...)}, "ofsroot: sandbox: starting ")
				assertLine(t, run.Console, "ofsroot: ", "sandbox: starting /sbin/init", "(hostname sandbox,")
				assertNot(t, run.Console, "Kernel panic", "a kernel panic")
				assertImageUnchanged(t, run)
				return
			}
			run := hostileRun(t, l, variant{apparmor: true}, img, false, words...)
			if h := run.Report.Values["sandbox.hostname"]; len(h) == 0 || h[0] != tc.want {
				t.Errorf("sandbox hostname %q, want %q", h, tc.want)
			}
			assertImageUnchanged(t, run)
		})
	}
}

// bootUntil boots spec and stops QEMU once marker appears on the
// console (for a halted machine, which QEMU does not leave by itself).
func bootUntil(t *testing.T, s *bootlab.Setup, spec bootlab.RunSpec, marker string) *bootlab.Run {
	t.Helper()
	spec.Dir = filepath.Join(runDir, "boots", strings.ReplaceAll(t.Name(), "/", "_"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec.Stream = &watcher{marker: marker, hit: cancel}
	bootSem <- struct{}{}
	run, err := s.Run(ctx, spec)
	<-bootSem
	if run == nil || run.Console == nil {
		t.Fatalf("boot: %v", err)
	}
	recordBoot(t, run)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console tail:\n%s", tail(run.Console.Text, 40))
		}
	})
	return run
}

func recordBoot(t *testing.T, run *bootlab.Run) {
	statsMu.Lock()
	stats = append(stats, bootStat{t.Name(), run.Console.Duration})
	statsMu.Unlock()
}

// watcher calls hit once the console has shown marker.
type watcher struct {
	marker string
	hit    func()
	seen   strings.Builder
	done   bool
}

func (w *watcher) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.seen.Write(p)
	s := w.seen.String()
	if i := strings.Index(s, w.marker); i >= 0 {
		// Stop at the end of the marker's line, not in its middle: the
		// test reads the whole line afterwards.
		if strings.IndexByte(s[i:], '\n') >= 0 {
			w.done = true
			w.hit()
		}
		return len(p), nil
	}
	if len(s) > 1<<16 {
		w.seen.Reset()
		w.seen.WriteString(s[len(s)-len(w.marker):])
	}
	return len(p), nil
}

// TestHostileRescueHalt: with no root and ofs-rescue=halt the machine
// halts (and stays halted: no restart), having said so.
func TestHostileRescueHalt(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	initrdPath, _ := l.initrd(t, variant{})
	img, _ := l.setup.DefaultRoot()
	run := bootUntil(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img,
		Append: []string{"root=UUID=00000000-0000-0000-0000-0000000000ff", "ofs-rescue=halt"}}, "System halted")
	c := run.Console
	assertLine(t, c, "ofsroot: ", "rescue: halting (ofs-rescue=halt)")
	assertHas(t, c, "reboot: System halted")
	assertNot(t, c, "reboot: Restarting system", "a restart")
	assertNot(t, c, "Kernel panic", "a kernel panic")
	if !run.ImageUnchanged() {
		t.Errorf("the image was written")
	}
}

// TestHostileSandboxNoOverlay: overlayfs=sandbox with an initramfs that
// lacks the overlay module boots the firmware once on the read-only
// root (degraded): the probe reports, and no restart loop follows.
func TestHostileSandboxNoOverlay(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	img, _ := l.setup.DefaultRoot()
	run := hostileRun(t, l, variant{without: []string{"overlay"}, apparmor: true}, img, false, "overlayfs=sandbox", "ofs-sandbox-restart=0")
	assertNot(t, run.Console, "the sandbox could not be set up", "a sandbox that failed on the read-only root")
	assertLine(t, run.Console, "ofsroot: ", "no restart left")
	assertLine(t, run.Console, "ofsroot: ", "DEGRADED")
	if run.Report.WriteRoot != "EROFS" {
		t.Errorf("writing / gave %q, want EROFS", run.Report.WriteRoot)
	}
	if n := strings.Count(run.Console.Text, "PROBE BEGIN"); n != 1 {
		t.Errorf("the firmware started %d times, want once", n)
	}
	assertImageUnchanged(t, run)
}

// memCase is one RAM-layer size on a guest of mem MiB; a filler writes
// / until it fails.
type memCase struct {
	mem   int
	words []string
	// fault: the cap is lifted; the boot is expected to run out of
	// memory (OOM panic, then the reboot kernel.panic asks for).
	fault bool
}

// TestHostileMemory: with the RAM layer capped below MemTotal, filling /
// ends in ENOSPC on 96, 128 and 256 MiB guests, whatever ofs-size asks;
// with the cap lifted (ofs-size-reserve=0) the same fill runs the kernel
// out of memory, and kernel.panic reboots it instead of leaving it hung.
func TestHostileMemory(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	for _, mc := range []memCase{
		{mem: 96, words: []string{"ofs-size=100"}},
		{mem: 128, words: []string{"ofs-size=90"}},
		{mem: 256, words: []string{"ofs-size=4G"}},
		{mem: 128, words: []string{"ofs-size=100", "ofs-size-reserve=32M"}},
		// panic=1: the fault's reboot comes sooner (kernel.panic=10 is
		// shown by TestHostileErrors).
		{mem: 256, words: []string{"ofs-size=90", "ofs-size-reserve=0", "panic=1"}, fault: true},
	} {
		t.Run(fmt.Sprintf("%dM_%s", mc.mem, strings.Join(mc.words, "_")), func(t *testing.T) {
			t.Parallel()
			s := *l.setup
			s.Board.QEMU.MemoryMiB = mc.mem
			initrdPath, _ := l.initrd(t, variant{})
			img, root := s.DefaultRoot()
			words := append([]string{root, "overlayfs=yes", "probe.fill=/"}, mc.words...)
			spec := bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: words,
				Dir: filepath.Join(runDir, "boots", strings.ReplaceAll(t.Name(), "/", "_"))}
			if mc.fault {
				// Ends in a panic and the kernel.panic reboot: not
				// through runBoot, which fails on a panic.
				run := bootUntil(t, &s, spec, "Rebooting in 1 seconds")
				c := run.Console
				if !c.Contains("Kernel panic") && !c.Contains("Out of memory") {
					t.Errorf("the lifted cap did not run the guest out of memory: the fault is gone (fill: %q)", c.Lines("fill."))
				}
				assertHas(t, c, "Rebooting in 1 seconds")
				assertLine(t, c, "ofsroot: ", "kernel.panic: left as panic= on the command line says")
				if !run.ImageUnchanged() {
					t.Errorf("the image was written")
				}
				return
			}
			run := runBoot(t, &s, spec)
			if run.ReportErr != nil {
				t.Fatalf("probe: %v", run.ReportErr)
			}
			r := run.Report
			res, n := r.Values["fill.result"], r.Values["fill.bytes"]
			t.Logf("MemTotal %d MiB, RAM layer %d MiB, filled %v bytes, then %v, MemAvailable %v", r.MemTotal>>20, r.RW.Bytes()>>20, n, res, r.Values["fill.memavailable"])
			if len(res) == 0 || res[0] != "ENOSPC" {
				t.Errorf("filling / ended with %q, want ENOSPC", res)
			}
			assertNot(t, run.Console, "Out of memory", "the OOM killer")
			if len(mc.words) == 1 {
				assertLine(t, run.Console, "ofsroot: warning: ", "the RAM layer is capped at")
			}
			assertImageUnchanged(t, run)
		})
	}
}

// cutStages are where TestHostilePowerCut cuts the power: a random
// moment within spread after the stage's console marker.
var cutStages = []struct {
	name, marker string
	spread       time.Duration
}{
	{"kernel", "Linux version", 2 * time.Second},
	{"init", "ofsroot: start t=", time.Second},
	{"real init", "ofsroot: switching to", 400 * time.Millisecond},
}

// TestHostilePowerCut kills QEMU at random moments of protected boots,
// across the kernel, the init and the real init (the probe, which
// writes / and syncs): the disk must be byte-identical every time. Each
// cut picks a stage, waits for its console marker and then a random
// delay; the seed is logged.
func TestHostilePowerCut(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	initrdPath, _ := l.initrd(t, variant{})
	img, root := l.setup.DefaultRoot()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	const cuts = 21
	var mu sync.Mutex
	var table []string
	finished := 0
	t.Cleanup(func() {
		t.Logf("%d cuts (stage+delay:reached): %s", cuts, strings.Join(table, ", "))
		// A boot that ended before its cut is no cut: the spreads are
		// meant to be short enough that few do.
		if finished > cuts/4 {
			t.Errorf("%d of %d boots ended before their cut: the kill points missed the boot", finished, cuts)
		}
	})
	for i := 0; i < cuts; i++ {
		st := cutStages[i%len(cutStages)]
		delay := time.Duration(rng.Int63n(int64(st.spread)))
		t.Run(fmt.Sprintf("%02d_%s", i, strings.ReplaceAll(st.name, " ", "_")), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &watcher{marker: st.marker, hit: func() { time.AfterFunc(delay, cancel) }}
			spec := bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: []string{root, "overlayfs=yes"}, Stream: w,
				Dir: filepath.Join(runDir, "boots", strings.ReplaceAll(t.Name(), "/", "_"))}
			bootSem <- struct{}{}
			run, _ := l.setup.Run(ctx, spec)
			<-bootSem
			if run == nil || run.Console == nil {
				t.Fatalf("no run")
			}
			recordBoot(t, run)
			reached := "kernel"
			switch c := run.Console; {
			case !c.TimedOut:
				reached = "finished before the cut"
			case c.Contains("PROBE END"):
				reached = "real init, report done"
			case c.Contains("PROBE BEGIN"):
				reached = "real init"
			case c.Contains("ofsroot: switching to"):
				reached = "switch"
			case c.Contains("ofsroot: start"):
				reached = "init"
			}
			mu.Lock()
			if !run.Console.TimedOut {
				finished++
			}
			table = append(table, fmt.Sprintf("%s+%.1fs:%s", st.name, delay.Seconds(), reached))
			mu.Unlock()
			if !run.ImageUnchanged() {
				t.Errorf("cut %s+%s (reached: %s): the disk changed: %s -> %s", st.name, delay, reached, run.ImageBefore, run.ImageAfter)
			}
		})
	}
}

// TestHostileMMC: on the i.MX6 board the root is a partition of the SD
// card; an unclean journal there is not replayed either, and the card is
// unchanged (BLKROSET on an mmc partition).
func TestHostileMMC(t *testing.T) {
	t.Parallel()
	needRoot(t)
	l := getLab(t, "sabrelite")
	img, off := hostileImage(t, l, nil)
	if err := bootlab.MakeUnclean(img, off, func(dir string) error {
		return os.WriteFile(dir+"/etc/written-before-the-cut", []byte("x\n"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	run := hostileRun(t, l, variant{}, img, false, "overlayfs=yes")
	dev := l.setup.Board.QEMU.PartitionDevice(bootlab.RootPartition)
	assertLine(t, run.Console, "ofsroot: ", "blockdev --setro "+dev)
	assertLine(t, run.Console, "UNCLEAN ROOT", dev)
	assertImageUnchanged(t, run)
}
