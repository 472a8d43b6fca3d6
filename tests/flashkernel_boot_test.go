package tests

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/debcache"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
)

// TestFlashKernelBoot: on a Debian root with Debian's own flash-kernel
// (bookworm's package, unpacked as dpkg installs it) and the ofsroot
// package, a kernel installation makes a boot script that the board's
// U-Boot runs to a protected boot, and the toggles work from then on.
//
// The root is an amd64 debootstrap (with linux-base and u-boot-tools,
// flash-kernel's own needs), driven in a chroot as TestPackage's is:
// flash-kernel is Architecture: armhf only because it serves ARM boards,
// but it is shell and data (the test checks it has no ELF file), so its
// scripts run the same on the host's sh as on the board's; what differs
// (dpkg --print-architecture, amd64 here) only chooses bootz over booti,
// which armhf chooses too. This takes seconds, where an armhf root under
// qemu-user would take minutes and needs binfmt_misc, which CI lacks.
//
//   - the Nitrogen6X's armmp kernel is put in place as its package does
//     (/boot/vmlinuz, the modules, the device trees) and the kernel
//     hooks run as its postinst runs them (run-parts /etc/kernel/postinst.d):
//     ofsroot's hook builds /boot/initrd.img with the packaged builder
//     and the shipped armv7 init, then its post-update.d call and
//     flash-kernel's own hook run flash-kernel, which finds the board
//     in the package's /usr/share/flash-kernel/db/ofsroot.db (the
//     machine is the device tree's model, from /etc/flash-kernel/machine
//     as the chroot has no /proc/device-tree) and writes /boot/boot.scr
//     from bootscr.uboot-generic with the package's ubootenv.d snippet
//     at @@UBOOT_ENV_EXTRA@@;
//   - /boot is the board's boot partition (the USB stick U-Boot's
//     distro boot scans), the root with the probe and ofsctl on the SD
//     card, the environment in SPI NOR, erased.
//
// Four boots in one QEMU session:
//
//	1  saveenv (U-Boot's default environment: overlayfs unset), boot:
//	   protected (the snippet's default), and the guest's ofsctl overlay
//	   reads /boot/boot.scr and says so, then runs ofsctl overlay off
//	2  plain (overlayfs=no, as Linux saved it)
//	3  setenv overlayfs; setenv ofs-once 1; saveenv; boot: one
//	   maintenance boot (plain), the flag cleared and saved first
//	4  protected again
//
// The SD card is unchanged after the four.
func TestFlashKernelBoot(t *testing.T) {
	t.Parallel()
	needImageTools(t)
	l := getLab(t, ubootBoard)
	s := l.setup
	b := s.Board
	kv := s.Kernel.Version
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	base, err := bootlab.Debootstrap(cache, "bookworm", "amd64", "linux-base", "u-boot-tools")
	if err != nil {
		t.Fatalf("%v (the test needs Debian's mirror once; the result is cached)", err)
	}
	fkDeb, fkDir, err := debcache.Package(cache, "flash-kernel", "armhf", "usr/sbin/flash-kernel")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(runDir, "flash-kernel-boot")
	os.MkdirAll(dir, 0o755)
	deb := buildDeb(t, filepath.Join(dir, "deb"), "1.0.0")
	times := map[string]time.Duration{}
	start := time.Now()

	// flash-kernel runs here as it is: no file of it is a program for
	// the board's CPU.
	filepath.WalkDir(fkDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.HasPrefix(b, []byte("\x7fELF")) {
				t.Errorf("flash-kernel has a compiled program, %s: running it on the host would not be flash-kernel's behaviour on the board", p)
			}
		}
		return nil
	})
	root := filepath.Join(dir, "root")
	sh(t, "cp", "-a", base, root)
	sh(t, "dpkg-deb", "-x", fkDeb, root)
	// What flash-kernel's postinst makes with ucf: /etc/default/flash-kernel
	// from its template. The kernel command line names the root (ofsroot's
	// init takes it from there, not from initramfs-tools' conf.d, which
	// flash-kernel's initramfs hook would write); DEFAULTS carries the
	// lab's probe word, which runs ofsctl overlay in every boot.
	tmpl, err := os.ReadFile(filepath.Join(fkDir, "usr/share/flash-kernel/default/flash-kernel"))
	if err != nil {
		t.Fatal(err)
	}
	rootWord := "root=PARTUUID=" + bootlab.DiskID + "-01"
	def := strings.Replace(string(tmpl), `LINUX_KERNEL_CMDLINE="quiet"`, `LINUX_KERNEL_CMDLINE="`+rootWord+` rootwait"`, 1)
	def = strings.Replace(def, `LINUX_KERNEL_CMDLINE_DEFAULTS=""`, `LINUX_KERNEL_CMDLINE_DEFAULTS="probe.run=/usr/bin/ofsctl,overlay"`, 1)
	if def == string(tmpl) || !strings.Contains(def, rootWord) || !strings.Contains(def, "probe.run") {
		t.Fatalf("flash-kernel's default file is not as expected:\n%s", tmpl)
	}
	os.WriteFile(filepath.Join(root, "etc/default/flash-kernel"), []byte(def), 0o644)
	dtb, err := s.Kernel.DTB(b.DeviceTree)
	if err != nil {
		t.Fatal(err)
	}
	model, err := dtbModel(dtb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/flash-kernel/machine"), []byte(model+"\n"), 0o644)

	// The ofsroot package, then the board and no host-dependent modules.
	sh(t, "cp", deb, filepath.Join(root, "tmp"))
	t.Logf("dpkg -i:\n%s", inRoot(t, root, "dpkg -i /tmp/"+filepath.Base(deb)))
	conf := filepath.Join(root, "etc/ofsroot/ofsroot.conf")
	c, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, append(c, []byte("BOARD=\""+b.Name+"\"\nMODULES_DEP=\"no\"\n")...), 0o644)
	if out := inRoot(t, root, "flash-kernel --supported && echo supported"); out != "supported\n" {
		t.Fatalf("flash-kernel does not know %q with the package's db: %q", model, out)
	}

	// The kernel, as linux-image-*-armmp installs it, and its postinst's
	// hooks.
	sh(t, "cp", "-a", filepath.Join(s.Kernel.Dir, "boot/vmlinuz-"+kv), filepath.Join(root, "boot/"))
	sh(t, "cp", "-a", filepath.Join(s.Kernel.Dir, "usr/lib/linux-image-"+kv), filepath.Join(root, "usr/lib/"))
	os.MkdirAll(filepath.Join(root, "usr/lib/modules"), 0o755)
	sh(t, "cp", "-a", filepath.Join(s.Kernel.Dir, "lib/modules", kv), filepath.Join(root, "usr/lib/modules/"))
	hooks := fmt.Sprintf("run-parts --report --exit-on-error --arg=%s --arg=/boot/vmlinuz-%s /etc/kernel/postinst.d", kv, kv)
	t0 := time.Now()
	out := inRoot(t, root, hooks+" 2>&1")
	times["kernel hooks (ofsroot's initramfs, flash-kernel twice)"] = time.Since(t0)
	t.Logf("%s:\n%s", hooks, out)
	for _, want := range []string{
		"ofsroot: building /boot/initrd.img-" + kv + " (board " + b.Name,
		"flash-kernel: installing version " + kv,
		"Generating boot script u-boot image... done.",
		"Using DTB: " + b.DeviceTree,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the kernel hooks did not say %q", want)
		}
	}
	if strings.Contains(out, "WARNING: ubootenv.d snippet used, but") {
		t.Errorf("flash-kernel ignored the snippet:\n%s", out)
	}
	initrd := filepath.Join(root, "boot/initrd.img-"+kv)
	assertBuildInfo(t, initrd, kv, "1.0.0")
	scr, err := os.ReadFile(filepath.Join(root, "boot/boot.scr"))
	if err != nil {
		t.Fatalf("flash-kernel wrote no /boot/boot.scr: %v", err)
	}
	// flash-kernel's substitutions, and the snippet in its place: after
	// bootargs is set, before the kernel is loaded.
	text := string(scr)
	iArgs := strings.Index(text, `setenv bootargs "probe.run=/usr/bin/ofsctl,overlay ${bootargs} `+rootWord+` rootwait"`)
	iSnip := strings.Index(text, `ofs_overlay="${overlayfs}"`)
	iLoad := strings.Index(text, "load ${devtype} ${devnum}:${partition} ${kernel_addr_r} ${pathprefix}vmlinuz-${fk_kvers}")
	if iArgs < 0 || iSnip < iArgs || iLoad < iSnip || !strings.Contains(text, "setenv fk_kvers '"+kv+"'") || !strings.Contains(text, "&& bootz ${kernel_addr_r}") || strings.Contains(text, "@@") {
		t.Errorf("flash-kernel's boot.scr lacks its substitutions or the snippet after bootargs (%d %d %d):\n%s", iArgs, iSnip, iLoad, text)
	}

	// /boot as the board's boot partition; the root on the SD card, with
	// the script flash-kernel wrote in its /boot (where ofsctl reads it).
	part := filepath.Join(dir, "bootpart")
	os.MkdirAll(part, 0o755)
	sh(t, "cp", "-rL", filepath.Join(root, "boot")+"/.", part)
	stick := filepath.Join(dir, "usb.img")
	if err := bootlab.MakeBootStick(part, stick, 0); err != nil {
		t.Fatal(err)
	}
	ub, err := bootlab.FetchUBoot(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "u-boot.bin")
	if err := bootlab.StripImage(ub.Image, int64(b.UBoot.QEMU.Skip), bin); err != nil {
		t.Fatal(err)
	}
	spi := filepath.Join(dir, "spi.img")
	if err := bootlab.MakeErasedFlash(spi, 2<<20); err != nil {
		t.Fatal(err)
	}
	ofsctl := filepath.Join(dir, "ofsctl")
	if err := bootlab.BuildOfsctl(b, ofsctl); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "sdroot")
	if err := bootlab.WriteUBootRootTree(tree, s.Probe, ofsctl, b.UBoot.FwEnvConfig()); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(tree, "boot"), 0o755)
	sh(t, "cp", filepath.Join(root, "boot/boot.scr"), filepath.Join(tree, "boot/boot.scr"))
	sd := filepath.Join(dir, "sd.img")
	rootfs := bootlab.Ext4{Dir: tree, SizeBytes: bootlab.RootFSBytes, Label: bootlab.RootLabel, UUID: bootlab.RootUUID}
	if _, err := bootlab.MakeMBRDisk(bootlab.Disk{FS: rootfs, Partition: bootlab.RootPartition, PowerOfTwo: true}, sd); err != nil {
		t.Fatal(err)
	}
	sdSum, err := diskimage.SHA256File(sd)
	if err != nil {
		t.Fatal(err)
	}
	times["setup (debootstrap cached, package built)"] = time.Since(start)

	bootSem <- struct{}{}
	defer func() { <-bootSem }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Cleanup(func() {
		for k, v := range times {
			t.Logf("%-55s %s", k, v.Round(100*time.Millisecond))
		}
	})
	sess := startUBoot(t, ctx, bootlab.UBootSpec{Board: b, Binary: bin, SPI: spi, Stick: stick, SD: sd, Log: filepath.Join(dir, "console.log")})
	dev := b.QEMU.PartitionDevice(bootlab.RootPartition)
	const promptWait, bootWait = 3 * time.Minute, 5 * time.Minute
	var bootStart time.Time
	newBoot := func() {
		sess.MarkBoot()
		bootStart = time.Now()
	}
	atPrompt := func(n int, cmds ...string) {
		t.Helper()
		if err := sess.Interrupt(promptWait); err != nil {
			t.Fatalf("boot %d: U-Boot prompt: %v", n, err)
		}
		for _, c := range cmds {
			if out, err := sess.Run(c, time.Minute); err != nil {
				t.Fatalf("boot %d: %s: %v\n%s", n, c, err, out)
			}
		}
		if err := sess.Send("boot\r"); err != nil {
			t.Fatal(err)
		}
	}
	probe := func(n int) *bootlab.Run {
		t.Helper()
		r, text, err := sess.WaitProbe(bootWait)
		d := time.Since(bootStart)
		times[fmt.Sprintf("boot %d", n)] = d
		statsMu.Lock()
		stats = append(stats, bootStat{fmt.Sprintf("%s/boot%d", t.Name(), n), d})
		statsMu.Unlock()
		if err != nil {
			t.Fatalf("boot %d: %v\n%s", n, err, tail(text, 30))
		}
		run := &bootlab.Run{Console: &bootlab.Console{Text: text}, Report: r}
		assertNot(t, run.Console, "Kernel panic", "kernel panic")
		assertHas(t, run.Console, "Booting Debian "+kv+" from usb 0:1...")
		assertHas(t, run.Console, "ofsroot: switching to /sbin/init")
		assertHas(t, run.Console, "(ofsroot 1.0.0, kernel "+kv+")")
		if r.PID != 1 {
			t.Errorf("boot %d: the probe ran as PID %d", n, r.PID)
		}
		for _, p := range r.Problems {
			t.Errorf("boot %d: probe: %s", n, p)
		}
		if !strings.Contains(r.Cmdline, rootWord+" rootwait") {
			t.Errorf("boot %d: kernel command line %q lacks flash-kernel's %s rootwait", n, r.Cmdline, rootWord)
		}
		return run
	}
	ofsctlOut := func(run *bootlab.Run, cmd string) string {
		t.Helper()
		for _, pr := range run.Report.Runs() {
			if pr.Cmd == cmd {
				if pr.Exit != 0 {
					t.Errorf("%s: exit %d:\n%s", cmd, pr.Exit, pr.Output)
				}
				return pr.Output
			}
		}
		t.Errorf("the guest did not run %s: %+v", cmd, run.Report.Runs())
		return ""
	}
	// assertMode checks the word the snippet gave the kernel and the
	// boot's mode: overlayfs=yes protected, overlayfs=no plain.
	assertMode := func(n int, run *bootlab.Run, word string) {
		t.Helper()
		if !strings.Contains(run.Report.Cmdline, " "+word) {
			t.Errorf("boot %d: kernel command line %q lacks %s", n, run.Report.Cmdline, word)
		}
		if word == "overlayfs=yes" {
			assertProtected(t, run, dev, initDefaultSizePercent)
		} else {
			assertPlain(t, run, dev, false)
		}
	}
	const status, off = "/usr/bin/ofsctl overlay", "/usr/bin/ofsctl overlay off"
	// What the guest's ofsctl says of an unset overlayfs under the script
	// flash-kernel wrote.
	protectedUnset := "next boot: protected, a RAM layer of 50% of RAM (the default) (overlayfs is not set, which /boot/boot.scr boots as yes)"

	// Boot 1: U-Boot's default environment saved (a valid copy for
	// Linux), overlayfs unset; the guest switches the overlay off.
	newBoot()
	atPrompt(1, "saveenv", "setenv bootargs probe.run=/usr/bin/ofsctl,overlay,off")
	run := probe(1)
	assertMode(1, run, "overlayfs=yes")
	if o := ofsctlOut(run, status); !strings.Contains(o, "overlayfs is not set\n") || !strings.Contains(o, protectedUnset) {
		t.Errorf("boot 1: ofsctl overlay:\n%s", o)
	}
	if o := ofsctlOut(run, off); !strings.Contains(o, "next boot: plain (overlayfs=no)") {
		t.Errorf("boot 1: ofsctl overlay off:\n%s", o)
	}

	// Boot 2: plain, as Linux saved.
	newBoot()
	run = probe(2)
	assertMode(2, run, "overlayfs=no")

	// Boot 3: overlayfs unset again and ofs-once: one maintenance boot.
	newBoot()
	atPrompt(3, "setenv overlayfs; setenv ofs-once 1; saveenv")
	run = probe(3)
	assertHas(t, run.Console, "ofsroot: ofs-once: a maintenance boot")
	assertMode(3, run, "overlayfs=no")
	// The snippet saved the environment without the flag before booting.
	if o := ofsctlOut(run, status); !strings.Contains(o, "ofs-once is not set\n") || !strings.Contains(o, protectedUnset) {
		t.Errorf("boot 3: ofsctl overlay:\n%s", o)
	}

	// Boot 4: protected again, nothing typed.
	newBoot()
	run = probe(4)
	assertMode(4, run, "overlayfs=yes")
	// The maintenance boot's save kept none of flash-kernel's words: they
	// would come back twice.
	if n := strings.Count(run.Report.Cmdline, "root="); n != 1 {
		t.Errorf("boot 4: kernel command line %q has %d root= words", run.Report.Cmdline, n)
	}
	sess.Close()

	// What U-Boot and Linux saved, read on the host.
	st := savedEnv(t, dir, spi)
	for _, n := range []string{"overlayfs", "ofs-once", "bootargs", "fk_kvers"} {
		if v, ok := st.Env().Get(n); ok {
			t.Errorf("the saved environment has %s=%q", n, v)
		}
	}

	if sum, err := diskimage.SHA256File(sd); err != nil || sum != sdSum {
		t.Errorf("the SD card (the root) was written during the boots: sha256 %s before, %s after (%v)", sdSum, sum, err)
	}
}

// dtbModel reads the root node's model property out of a flattened
// device tree (the string /proc/device-tree/model shows on the board).
func dtbModel(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	be := binary.BigEndian
	if len(b) < 40 || be.Uint32(b) != 0xd00dfeed {
		return "", fmt.Errorf("%s is not a device tree blob", path)
	}
	structOff, stringsOff := int(be.Uint32(b[8:])), int(be.Uint32(b[12:]))
	cstr := func(off int) string {
		if off < 0 || off >= len(b) {
			return ""
		}
		if i := bytes.IndexByte(b[off:], 0); i >= 0 {
			return string(b[off : off+i])
		}
		return ""
	}
	p, depth := structOff, 0
	for p+4 <= len(b) {
		tok := be.Uint32(b[p:])
		p += 4
		switch tok {
		case 1: // FDT_BEGIN_NODE
			p += (len(cstr(p)) + 1 + 3) &^ 3
			depth++
		case 2: // FDT_END_NODE
			depth--
		case 3: // FDT_PROP
			if p+8 > len(b) {
				return "", fmt.Errorf("%s: truncated property", path)
			}
			n, name := int(be.Uint32(b[p:])), cstr(stringsOff+int(be.Uint32(b[p+4:])))
			p += 8
			if depth == 1 && name == "model" && p+n <= len(b) {
				return strings.TrimRight(string(b[p:p+n]), "\x00"), nil
			}
			p += (n + 3) &^ 3
		case 4: // FDT_NOP
		case 9: // FDT_END
			return "", fmt.Errorf("%s: the root node has no model", path)
		default:
			return "", fmt.Errorf("%s: bad token %#x", path, tok)
		}
	}
	return "", fmt.Errorf("%s: no FDT_END", path)
}
