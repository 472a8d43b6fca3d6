package tests

import (
	"github.com/ofsroot/ofsroot/pkg/diskimage"

	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootscript "github.com/ofsroot/ofsroot/boot"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

// The U-Boot boot test: the Nitrogen6X booted the way the board boots,
// in QEMU's sabrelite machine with Debian's u-boot-imx nitrogen6q build.
// U-Boot's distro boot finds boot.scr (made by boot.WritePartition, as
// `ofsroot bootfiles` does) on a USB stick, the script turns the
// environment into kernel command-line words and boots zImage, the
// device tree and uInitrd; the root, with the probe as its init and
// ofsctl in /usr/bin, is on the SD card; the environment is in the
// emulated SPI NOR, backed by a file the test reads too.
//
// One QEMU session goes through six boots: the console stays on a unix
// socket across resets and reboots, and the test waits for "Hit any
// key", types commands at "=> ", and reads each boot's probe report.
// The scenarios are subtests in the order they build on each other:
//
//	EnvUnset   boot 1: erased SPI NOR, U-Boot's default environment: a plain boot
//	Saveenv    boots 2 and 3: setenv overlayfs yes; setenv ofs-size 20; saveenv; reset:
//	           protected with a 20% tmpfs on that boot and the next
//	OneShot    boots 4 and 5: setenv ofs-once 1; saveenv; boot: one plain boot
//	           (the script clears the flag and saves), then protected again
//	           Boot 5 is also ofs-once with a saveenv that fails: the script
//	           must then boot protected, not plain
//	OfsctlOff  boots 5 and 6: on boot 5 the guest runs ofsctl overlay off, which
//	           writes the environment in SPI NOR through /dev/mtd0; boot 6 is plain
//	TornEnv    boot 7, a second QEMU session: a power cut tears the environment
//	           while ofsctl overlay on writes it (the SPI image as the cut leaves
//	           it: one erase block erased and half programmed); U-Boot falls back
//	           to its built-in environment, which boot 1 showed boots plainly with
//	           the default script; with a boot.scr made --protect-by-default
//	           (ProtectByDefault) boot 7 is protected
//
// Every boot also runs `ofsctl env print` in the guest, so each report
// shows the environment as Linux reads it. What the kernel got is read
// from its /proc/cmdline (the probe's report), not the script's echo.

const ubootBoard = "nitrogen6x"

// ofsctlPrint is on the command line of every boot (through the boot
// script's --append words).
const ofsctlPrint = "probe.run=/usr/bin/ofsctl,env,print,overlayfs,ofs-size,ofs-once"

// ubootLab is what the U-Boot test boots: images in dir.
type ubootLab struct {
	dir     string
	binary  string // U-Boot, stripped for QEMU's loader
	stick   string // USB stick: the boot partition
	spi     string // SPI NOR: the environment
	sd      string // SD card: the root
	hostCfg string // fw_env.config for the SPI image, on the host
	sdSum   string
	// What the boot partition is made of, for a second stick.
	vmlinuz, dtb, initrd string
	opts                 bootscript.Options
}

func prepareUBoot(t *testing.T) (*lab, *ubootLab) {
	t.Helper()
	l := getLab(t, ubootBoard)
	for _, tool := range []string{"mkfs.vfat", "mcopy", "fw_printenv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh", tool)
		}
	}
	s := l.setup
	b := s.Board
	initrd, _ := l.initrd(t, variant{})
	u := &ubootLab{dir: filepath.Join(runDir, "uboot", ubootBoard)}
	u.binary = filepath.Join(u.dir, "u-boot.bin")
	u.stick = filepath.Join(u.dir, "usb.img")
	u.spi = filepath.Join(u.dir, "spi.img")
	u.sd = filepath.Join(u.dir, "sd.img")
	u.hostCfg = filepath.Join(u.dir, "fw_env.config")
	if err := os.MkdirAll(u.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	ub, err := bootlab.FetchUBoot(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := bootlab.StripImage(ub.Image, int64(b.UBoot.QEMU.Skip), u.binary); err != nil {
		t.Fatal(err)
	}
	dtb, err := s.Kernel.DTB(b.DeviceTree)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(u.dir, "boot")
	u.vmlinuz, u.dtb, u.initrd = s.Kernel.Vmlinuz, dtb, initrd
	u.opts = bootscript.Options{Root: "PARTUUID=" + bootlab.DiskID + "-01", Append: []string{ofsctlPrint}}
	if _, err := bootscript.WritePartition(part, b, bootscript.Inputs{
		Vmlinuz: u.vmlinuz, DTB: u.dtb, Initramfs: u.initrd, Compression: "gzip",
		Options: u.opts, Time: time.Unix(bootlab.SourceDateEpoch, 0),
	}); err != nil {
		t.Fatal(err)
	}
	if err := bootlab.MakeBootStick(part, u.stick, 0); err != nil {
		t.Fatal(err)
	}
	// The board's sst25vf016b: 2 MiB, erased.
	if err := bootlab.MakeErasedFlash(u.spi, 2<<20); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(u.hostCfg, []byte(u.spi+" 0xC0000 0x2000 0x1000\n"), 0o644)

	ofsctl := filepath.Join(u.dir, "ofsctl")
	if err := bootlab.BuildOfsctl(b, ofsctl); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(u.dir, "root")
	if err := bootlab.WriteUBootRootTree(tree, s.Probe, ofsctl, b.UBoot.FwEnvConfig()); err != nil {
		t.Fatal(err)
	}
	fs := bootlab.Ext4{Dir: tree, SizeBytes: bootlab.RootFSBytes, Label: bootlab.RootLabel, UUID: bootlab.RootUUID}
	if _, err := bootlab.MakeMBRDisk(bootlab.Disk{FS: fs, Partition: bootlab.RootPartition, PowerOfTwo: true}, u.sd); err != nil {
		t.Fatal(err)
	}
	if u.sdSum, err = diskimage.SHA256File(u.sd); err != nil {
		t.Fatal(err)
	}
	return l, u
}

// hostEnv reads the SPI image's environment on the host, with this
// project's reader and with Debian's fw_printenv.
func (u *ubootLab) hostEnv(t *testing.T, names ...string) (*ubootenv.Env, string) {
	t.Helper()
	cfg, err := ubootenv.ReadConfig(u.hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ubootenv.Open(cfg, ubootenv.Options{})
	if err != nil {
		t.Fatalf("the SPI image's environment: %v", err)
	}
	out, err := exec.Command("fw_printenv", append([]string{"-c", u.hostCfg}, names...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("fw_printenv: %v\n%s", err, out)
	}
	return s.Env(), string(out)
}

func TestUBoot(t *testing.T) {
	t.Parallel()
	l, u := prepareUBoot(t)
	b := l.setup.Board
	dev := b.QEMU.PartitionDevice(bootlab.RootPartition)

	bootSem <- struct{}{}
	defer func() { <-bootSem }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logPath := filepath.Join(u.dir, "console.log")
	sess, err := bootlab.StartUBoot(ctx, bootlab.UBootSpec{Board: b, Binary: u.binary, SPI: u.spi, Stick: u.stick, SD: u.sd, Log: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log: %s\nconsole tail:\n%s", logPath, tail(sess.Text(), 40))
		}
	})

	// broken is set when the session is in no known state: the
	// scenarios after it are skipped.
	broken := ""
	must := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			broken = what
			t.Fatalf("%s: %v", what, err)
		}
	}
	scenario := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			if broken != "" {
				t.Skipf("the session broke earlier (%s)", broken)
			}
			f(t)
		})
	}
	const promptWait, bootWait = 3 * time.Minute, 5 * time.Minute
	// boot5 is shared by OneShot (protected again) and OfsctlOff (the
	// guest's write).
	var boot5 *bootlab.Run
	var bootStart time.Time
	newBoot := func() {
		sess.MarkBoot()
		bootStart = time.Now()
	}
	// probe waits for the boot under way to reach the probe and checks
	// what every boot must show.
	probe := func(t *testing.T, n int) *bootlab.Run {
		t.Helper()
		r, text, err := sess.WaitProbe(bootWait)
		statsMu.Lock()
		stats = append(stats, bootStat{t.Name() + "/boot" + string(rune('0'+n)), time.Since(bootStart)})
		statsMu.Unlock()
		if err != nil {
			broken = "boot " + string(rune('0'+n))
			t.Fatalf("boot %d: %v\n%s", n, err, tail(text, 30))
		}
		run := &bootlab.Run{Console: &bootlab.Console{Text: text}, Report: r}
		assertNot(t, run.Console, "Kernel panic", "kernel panic")
		assertNot(t, run.Console, "the init panicked", "a panic recovered in the init")
		assertHas(t, run.Console, "ofsroot: boot script for "+ubootBoard)
		assertHas(t, run.Console, "ofsroot: switching to /sbin/init")
		if r.PID != 1 {
			t.Errorf("boot %d: the probe ran as PID %d", n, r.PID)
		}
		for _, p := range r.Problems {
			t.Errorf("boot %d: probe: %s", n, p)
		}
		return run
	}
	// bootargs is the kernel's command line as the booted system reads
	// it in /proc/cmdline.
	bootargs := func(run *bootlab.Run) string {
		if run.Report.Cmdline == "" {
			t.Errorf("the probe reported no /proc/cmdline")
		}
		return run.Report.Cmdline
	}
	// envPrint is what `ofsctl env print overlayfs ofs-size ofs-once`
	// said in the guest.
	envPrint := func(t *testing.T, run *bootlab.Run) string {
		t.Helper()
		for _, pr := range run.Report.Runs() {
			if pr.Cmd == "/usr/bin/ofsctl env print overlayfs ofs-size ofs-once" {
				return pr.Output
			}
		}
		t.Errorf("the guest did not run ofsctl env print: runs %+v", run.Report.Runs())
		return ""
	}

	scenario("EnvUnset", func(t *testing.T) {
		newBoot()
		run := probe(t, 1)
		assertHas(t, run.Console, "*** Warning - bad CRC, using default environment")
		if a := bootargs(run); strings.Contains(a, "overlayfs=") || strings.Contains(a, "ofs-size=") {
			t.Errorf("bootargs %q: nothing set, so no overlay words", a)
		}
		assertPlain(t, run, dev, false)
		// Linux reads the same state: no valid environment in SPI NOR.
		if out := envPrint(t, run); !strings.Contains(out, "no valid U-Boot environment") {
			t.Errorf("ofsctl env print on erased flash said %q", out)
		}
	})

	scenario("Saveenv", func(t *testing.T) {
		newBoot()
		must(t, "interrupting boot 2", sess.Interrupt(promptWait))
		out, err := sess.Run("printenv overlayfs", time.Minute)
		must(t, "printenv", err)
		if !strings.Contains(out, `"overlayfs" not defined`) {
			t.Errorf("printenv overlayfs before anything was set: %q", out)
		}
		must(t, "reset", sess.Send("setenv overlayfs yes; setenv ofs-size 20; saveenv; reset\r"))
		newBoot()
		run := probe(t, 2)
		assertNot(t, run.Console, "bad CRC", "U-Boot's default environment after saveenv")
		if a := bootargs(run); !strings.Contains(a, " overlayfs=yes ofs-size=20") {
			t.Errorf("bootargs %q lack overlayfs=yes ofs-size=20", a)
		}
		assertProtected(t, run, dev, 20)
		if out := envPrint(t, run); out != "overlayfs=yes\nofs-size=20\n## Error: \"ofs-once\" not defined\n" {
			t.Errorf("ofsctl env print in the guest: %q", out)
		}
		// U-Boot's saveenv, read on the host by both readers.
		e, fw := u.hostEnv(t, "overlayfs", "ofs-size")
		if v, _ := e.Get("overlayfs"); v != "yes" || fw != "overlayfs=yes\nofs-size=20\n" {
			t.Errorf("SPI image: overlayfs=%q; fw_printenv: %q", v, fw)
		}
		if v, _ := e.Get("bootcmd"); v != "run distro_bootcmd" {
			t.Errorf("SPI image: bootcmd %q", v)
		}

		newBoot() // boot 3: the next, with no command typed
		run = probe(t, 3)
		assertProtected(t, run, dev, 20)
	})

	scenario("OneShot", func(t *testing.T) {
		newBoot()
		must(t, "interrupting boot 4", sess.Interrupt(promptWait))
		_, err := sess.Run("setenv ofs-once 1; saveenv", time.Minute)
		must(t, "setting ofs-once", err)
		must(t, "boot", sess.Send("boot\r"))
		run := probe(t, 4)
		assertHas(t, run.Console, "ofsroot: ofs-once: a maintenance boot")
		if a := bootargs(run); !strings.Contains(a, " overlayfs=no") {
			t.Errorf("bootargs %q lack overlayfs=no", a)
		}
		assertPlain(t, run, dev, false)
		// The script saved the environment without the flag before
		// booting: Linux reads it so.
		if out := envPrint(t, run); out != "overlayfs=yes\nofs-size=20\n## Error: \"ofs-once\" not defined\n" {
			t.Errorf("ofsctl env print in the maintenance boot: %q", out)
		}

		// Boot 5: nothing to type for the one-shot to be over. The
		// prompt is only used to check the saved flag is gone and to
		// give this boot the next scenario's command (extbootargs,
		// not saved).
		newBoot()
		must(t, "interrupting boot 5", sess.Interrupt(promptWait))
		out, err := sess.Run("printenv ofs-once", time.Minute)
		must(t, "printenv", err)
		if !strings.Contains(out, `"ofs-once" not defined`) {
			t.Errorf("printenv ofs-once after the maintenance boot: %q", out)
		}
		// Unsaved, for this boot only: ofs-root names the root instead
		// of the script's built-in PARTUUID, and the guest runs ofsctl.
		_, err = sess.Run("setenv ofs-root "+dev+"; setenv extbootargs probe.run=/usr/bin/ofsctl,overlay,off", time.Minute)
		must(t, "setenv extbootargs", err)
		// And ofs-once, with a saveenv that fails: the environment is
		// grown past its 8 KiB copy, which U-Boot refuses to export
		// (before it erases anything). The script cannot clear the flag,
		// so it must not give the maintenance boot: protected as saved.
		_, err = sess.Run("setenv ofs-once 1; setenv ofs_fill 0123456789abcdef0123456789abcdef", time.Minute)
		must(t, "setenv ofs-once", err)
		for range 9 { // 32 bytes × 2⁹ = 16 KiB
			_, err = sess.Run("setenv ofs_fill ${ofs_fill}${ofs_fill}", time.Minute)
			must(t, "growing the environment", err)
		}
		must(t, "boot", sess.Send("boot\r"))
		run = probe(t, 5)
		a := bootargs(run)
		if !strings.Contains(a, "root="+dev+" ") {
			t.Errorf("bootargs %q: ofs-root did not set root=", a)
		}
		assertHas(t, run.Console, "ofsroot: ofs-once: cannot save the environment, so no maintenance boot")
		assertNot(t, run.Console, "ofsroot: ofs-once: a maintenance boot", "a maintenance boot although saveenv failed")
		if !strings.Contains(a, " overlayfs=yes ofs-size=20") || strings.Contains(a, "overlayfs=no") {
			t.Errorf("kernel command line %q: saveenv failed, so overlayfs=yes as saved", a)
		}
		assertProtected(t, run, dev, 20)
		boot5 = run
	})

	scenario("OfsctlOff", func(t *testing.T) {
		if boot5 == nil {
			t.Skip("boot 5 did not happen")
		}
		// In boot 5 the guest wrote the environment through /dev/mtd0.
		var off *bootlab.ProgramRun
		for _, pr := range boot5.Report.Runs() {
			if pr.Cmd == "/usr/bin/ofsctl overlay off" {
				pr := pr
				off = &pr
			}
		}
		switch {
		case off == nil:
			t.Fatalf("the guest did not run ofsctl overlay off: %+v", boot5.Report.Runs())
		case off.Exit != 0 || !strings.Contains(off.Output, "next boot: plain (overlayfs=no)"):
			t.Errorf("ofsctl overlay off: exit %d:\n%s", off.Exit, off.Output)
		}
		newBoot()
		run := probe(t, 6)
		if a := bootargs(run); !strings.Contains(a, " overlayfs=no") || strings.Contains(a, "probe.run=/usr/bin/ofsctl,overlay,off") || !strings.Contains(a, "root=PARTUUID=") {
			t.Errorf("bootargs %q: want overlayfs=no, the script's root=PARTUUID= and no ofsctl overlay off (ofs-root and extbootargs were not saved)", a)
		}
		assertPlain(t, run, dev, false)
		// Linux's write, read on the host by both readers: U-Boot's
		// own variables kept, the overlay off.
		e, fw := u.hostEnv(t, "overlayfs")
		if v, _ := e.Get("bootcmd"); v != "run distro_bootcmd" || fw != "overlayfs=no\n" {
			t.Errorf("SPI image after ofsctl: bootcmd %q; fw_printenv %q", v, fw)
		}
		for _, n := range []string{"extbootargs", "ofs-root", "ofs-once"} {
			if _, ok := e.Get(n); ok {
				t.Errorf("%s is in the saved environment", n)
			}
		}
	})

	sess.Close()

	t.Run("TornEnv", func(t *testing.T) {
		// The power cut, applied to the SPI image while QEMU is off:
		// ofsctl overlay on's own write (ubootenv.Store.Save) through a
		// NOR device that loses power after half an erase block.
		cfg, err := ubootenv.ReadConfig(u.hostCfg)
		if err != nil {
			t.Fatal(err)
		}
		cut := &powerCut{left: 0x800}
		st, err := ubootenv.Open(cfg, ubootenv.Options{Empty: true, Open: cut.open})
		if err != nil {
			t.Fatal(err)
		}
		e := st.Env()
		e.Set("overlayfs", "yes")
		if err := st.Save(e); !errors.Is(err, errPowerCut) {
			t.Fatalf("saving through the torn device: %v, want the power cut", err)
		}
		st.Close()
		if _, err := ubootenv.Open(cfg, ubootenv.Options{}); !errors.Is(err, ubootenv.ErrNoValidCopy) {
			t.Fatalf("after the cut the SPI image's environment reads: %v, want no valid copy", err)
		}

		// The field boot script on a stick of its own.
		field := filepath.Join(u.dir, "boot-field")
		stick := filepath.Join(u.dir, "usb-field.img")
		opts := u.opts
		opts.ProtectByDefault = true
		if _, err := bootscript.WritePartition(field, b, bootscript.Inputs{
			Vmlinuz: u.vmlinuz, DTB: u.dtb, Initramfs: u.initrd, Compression: "gzip",
			Options: opts, Time: time.Unix(bootlab.SourceDateEpoch, 0),
		}); err != nil {
			t.Fatal(err)
		}
		if err := bootlab.MakeBootStick(field, stick, 0); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(u.dir, "console-torn.log")
		sess, err = bootlab.StartUBoot(ctx, bootlab.UBootSpec{Board: b, Binary: u.binary, SPI: u.spi, Stick: stick, SD: u.sd, Log: logPath})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		newBoot()
		run := probe(t, 7)
		assertHas(t, run.Console, "*** Warning - bad CRC, using default environment")
		assertHas(t, run.Console, "ofsroot: overlayfs is not set")
		if a := bootargs(run); !strings.Contains(a, " overlayfs=yes") || strings.Contains(a, "ofs-size=") {
			t.Errorf("kernel command line %q: want overlayfs=yes (and no ofs-size: the built-in environment has none)", a)
		}
		assertProtected(t, run, dev, initDefaultSizePercent)
		if out := envPrint(t, run); !strings.Contains(out, "no valid U-Boot environment") {
			t.Errorf("ofsctl env print on the torn environment said %q", out)
		}
		sess.Close()
	})

	if sum, err := diskimage.SHA256File(u.sd); err != nil || sum != u.sdSum {
		t.Errorf("the SD card (the root) was written during the boots: sha256 %s before, %s after (%v)", u.sdSum, sum, err)
	}
}

// initDefaultSizePercent is the init's RAM layer size without ofs-size
// (README: ofs-size).
const initDefaultSizePercent = 50

// errPowerCut is what powerCut's writes fail with once the power is gone.
var errPowerCut = errors.New("power cut")

// powerCut opens the SPI image as the NOR flash it stands for (4 KiB
// erase blocks, erased to 0xff) and lets left more bytes be programmed;
// the write that crosses that point programs only its first bytes and
// fails, as would a board losing power in the middle of programming.
type powerCut struct{ left int }

func (p *powerCut) open(path string, write bool) (ubootenv.Device, error) {
	d, err := ubootenv.OpenDevice(path, write)
	if err != nil {
		return nil, err
	}
	return &cutNOR{Device: d, cut: p}, nil
}

type cutNOR struct {
	ubootenv.Device
	cut *powerCut
}

func (c *cutNOR) Medium() ubootenv.Medium { return ubootenv.MediumNOR }
func (c *cutNOR) EraseSize() int64        { return 0x1000 }
func (c *cutNOR) Erase(off, n int64) error {
	_, err := c.Device.WriteAt(bytes.Repeat([]byte{0xff}, int(n)), off)
	return err
}
func (c *cutNOR) WriteAt(b []byte, off int64) (int, error) {
	n := min(len(b), c.cut.left)
	c.cut.left -= n
	if _, err := c.Device.WriteAt(b[:n], off); err != nil {
		return 0, err
	}
	if n < len(b) {
		return n, errPowerCut
	}
	return n, nil
}
