package tests

import (
	"context"
	"github.com/ofsroot/ofsroot/internal/testenv"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"github.com/ofsroot/ofsroot/pkg/imageinstall"
)

// TestImageBoot builds disk images with `ofsroot image`'s builder from
// the lab's root (the probe as /sbin/init), checks them with the real
// tools, and boots each: an x86 image from the kernel and initramfs read
// back out of its own boot partition, with the command line it wrote in
// cmdline.txt; a U-Boot board's image from its SD card by the board's
// real U-Boot, through the boot.scr the image carries (imageUBootBoot).
// The root must be protected by the overlay and the image unchanged.
func TestImageBoot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		board, rootType, table string
		data                   int64
	}{
		{"qemu-x86_64", "ext4", "mbr", 16 * diskimage.MiB},
		{"qemu-x86_64", "squashfs", "gpt", 0},
		{"sabrelite", "ext4", "mbr", 0},
		{"sabrelite", "squashfs", "mbr", 8 * diskimage.MiB},
	} {
		t.Run(tc.board+"-"+tc.rootType+"-"+tc.table, func(t *testing.T) {
			t.Parallel()
			needImageTools(t)
			l := getLab(t, tc.board)
			initrd, _ := l.initrd(t, variant{})
			s := l.setup
			dir := filepath.Join(runDir, "image", strings.ReplaceAll(t.Name(), "/", "_"))
			os.MkdirAll(dir, 0o755)
			res, err := diskimage.Build(diskimage.Options{
				Board: s.Board, Kernel: s.Kernel.Dir, Initramfs: initrd, RootFS: s.Tree,
				RootType: tc.rootType, Table: tc.table, DataSize: tc.data,
				SourceDateEpoch: bootlab.SourceDateEpoch, Output: filepath.Join(dir, "disk.img"),
			})
			if err != nil {
				t.Fatal(err)
			}
			checkImageTools(t, res)
			root, _ := res.Layout.Partition(diskimage.RoleRoot)
			if s.Board.UBoot != nil {
				imageUBootBoot(t, l, res, tc.rootType, root, tc.rootType == "ext4")
				return
			}

			// Boot what the image holds: its kernel, initramfs, command line.
			boot, _ := res.Layout.Partition(diskimage.RoleBoot)
			fat := fmt.Sprintf("%s@@%d", res.Output, boot.Start)
			kernel := filepath.Join(dir, "vmlinuz")
			initrdBack := filepath.Join(dir, "initrd.img")
			mtools(t, "mcopy", "-n", "-i", fat, "::/vmlinuz", kernel)
			mtools(t, "mcopy", "-n", "-i", fat, "::/initrd.img", initrdBack)
			cmdline := mtools(t, "mtype", "-i", fat, "::/cmdline.txt")
			var words []string
			for _, w := range strings.Fields(cmdline) {
				if !strings.HasPrefix(w, "console=") { // the lab adds the board's
					words = append(words, w)
				}
			}
			run := imageBoot(t, s, kernel, initrdBack, res.Output, words)
			assertImageProtected(t, run, s.Board.QEMU.PartitionDevice(root.Number), tc.rootType)
			if st := run.Report.Status; st != nil && st.Root.Spec != "PARTUUID="+root.PartUUID {
				t.Errorf("status root.spec = %q, want PARTUUID=%s", st.Root.Spec, root.PartUUID)
			}
			assertImageUnchanged(t, run)
		})
	}
}

// imageUBootBoot boots a U-Boot board's image as its SD card (and as a USB
// stick, for U-Boot: see below) with the board's U-Boot and an erased
// environment (a new board): U-Boot's
// distro boot must find the image's boot.scr (no extlinux.conf shadows
// it) and, with overlayfs unset, boot protected. With toggle, the same
// session then boots again after `setenv overlayfs no` at the prompt:
// the environment decides, so that boot is plain.
func imageUBootBoot(t *testing.T, l *lab, res *diskimage.Result, fstype string, root diskimage.Partition, toggle bool) {
	t.Helper()
	b := l.setup.Board
	boot, _ := res.Layout.Partition(diskimage.RoleBoot)
	fat := fmt.Sprintf("%s@@%d", res.Output, boot.Start)
	if ls := mtools(t, "mdir", "-b", "-i", fat, "::/"); strings.Contains(ls, "extlinux") || !strings.Contains(ls, "boot.scr") {
		t.Fatalf("boot partition of a U-Boot image: want boot.scr and no extlinux:\n%s", ls)
	}
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	ub, err := bootlab.FetchUBoot(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(res.Output)
	bin, spi, sd, stick := filepath.Join(dir, "u-boot.bin"), filepath.Join(dir, "spi.img"), filepath.Join(dir, "sd.img"), filepath.Join(dir, "stick.img")
	if err := bootlab.StripImage(ub.Image, int64(b.UBoot.QEMU.Skip), bin); err != nil {
		t.Fatal(err)
	}
	if err := bootlab.MakeErasedFlash(spi, 2<<20); err != nil {
		t.Fatal(err)
	}
	// U-Boot in QEMU's sabrelite machine sees no SD card (its `mmc dev`
	// finds none), so it reads the image's boot partition from the same
	// bytes on a USB stick; Linux, without USB storage drivers in the
	// initramfs, sees the SD card only and finds the root there by the
	// PARTUUID the script passes.
	for _, copy := range []string{sd, stick} {
		if err := bootlab.CopySparse(res.Output, copy); err != nil {
			t.Fatal(err)
		}
	}
	bootSem <- struct{}{}
	defer func() { <-bootSem }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logPath := filepath.Join(dir, "console.log")
	sess, err := bootlab.StartUBoot(ctx, bootlab.UBootSpec{Board: b, Binary: bin, SPI: spi, SD: sd, Stick: stick, Log: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log: %s\nconsole tail:\n%s", logPath, tail(sess.Text(), 40))
		}
	})
	device := b.QEMU.PartitionDevice(root.Number)
	wait := func(what string) *bootlab.Run {
		t.Helper()
		start := time.Now()
		r, text, err := sess.WaitProbe(5 * time.Minute)
		statsMu.Lock()
		stats = append(stats, bootStat{t.Name() + "/" + what, time.Since(start)})
		statsMu.Unlock()
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, tail(text, 30))
		}
		run := &bootlab.Run{Console: &bootlab.Console{Text: text}, Report: r}
		assertNot(t, run.Console, "Kernel panic", "kernel panic")
		assertHas(t, run.Console, "ofsroot: boot script for "+b.Name)
		return run
	}

	sess.MarkBoot()
	run := wait("protected")
	assertHas(t, run.Console, "overlayfs is not set")
	assertImageProtected(t, run, device, fstype)
	if !strings.Contains(run.Report.Cmdline, "root=PARTUUID="+root.PartUUID) {
		t.Errorf("/proc/cmdline %q lacks root=PARTUUID=%s", run.Report.Cmdline, root.PartUUID)
	}
	if !toggle {
		return
	}
	// The probe rebooted: stop at the prompt, where nothing writes the
	// card, and compare its bytes with the image's.
	sess.MarkBoot()
	if err := sess.Interrupt(3 * time.Minute); err != nil {
		t.Fatalf("interrupting the second boot: %v", err)
	}
	before, _ := diskimage.SHA256File(res.Output)
	if after, _ := diskimage.SHA256File(sd); after != before {
		t.Errorf("the protected boot wrote the card: %s -> %s", before, after)
	}
	if err := sess.Send("setenv overlayfs no; boot\r"); err != nil {
		t.Fatal(err)
	}
	run = wait("overlayfs=no")
	if st := run.Report.Status; st == nil || st.Mode != bootstatus.Plain {
		t.Errorf("after setenv overlayfs no: status %+v (%s), want plain", st, run.Report.StatusError)
	}
	if m, ok := run.Report.MountAt("/"); !ok || m.FSType != fstype || m.Source != device {
		t.Errorf("/ = %+v, want %s (%s)", m, device, fstype)
	}
}

func needImageTools(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "mounts and debugfs of images")
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mtype", "fsck.vfat", "mksquashfs", "unsquashfs", "blkid", "sfdisk", "e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh", tool)
		}
	}
}

func mtools(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(o)
}

// checkImageTools runs sfdisk, blkid, fsck.vfat, e2fsck and unsquashfs on
// a built image.
func checkImageTools(t *testing.T, res *diskimage.Result) {
	t.Helper()
	o, err := exec.Command("sfdisk", "-d", res.Output).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, o)
	}
	wantID := "label-id: 0x" + res.Layout.DiskID
	if res.Layout.Table == "gpt" {
		wantID = "label-id: " + strings.ToUpper(res.Layout.DiskID)
	}
	if !strings.Contains(string(o), wantID) || strings.Count(string(o), "start=") != len(res.Layout.Partitions) {
		t.Errorf("sfdisk -d lacks %q or has the wrong partitions:\n%s", wantID, o)
	}
	for _, p := range res.Layout.Partitions {
		part := filepath.Join(t.TempDir(), "part")
		if o, err := exec.Command("dd", "if="+res.Output, "of="+part, "bs=1M", fmt.Sprintf("skip=%d", p.Start/diskimage.MiB), fmt.Sprintf("count=%d", p.Size/diskimage.MiB), "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v %s", err, o)
		}
		o, _ := exec.Command("blkid", "-p", "-o", "export", part).Output()
		if !strings.Contains(string(o), "TYPE="+p.FSType+"\n") || (p.FSUUID != "" && !strings.Contains(string(o), "UUID="+p.FSUUID+"\n")) {
			t.Errorf("blkid of partition %d: %s, want TYPE=%s UUID=%s", p.Number, o, p.FSType, p.FSUUID)
		}
		var check *exec.Cmd
		switch p.FSType {
		case "vfat":
			check = exec.Command("fsck.vfat", "-n", part)
		case "ext4":
			check = exec.Command("e2fsck", "-fn", part)
		case "squashfs":
			check = exec.Command("unsquashfs", "-l", part)
		}
		if o, err := check.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(check.Args, " "), err, o)
		} else if p.FSType == "squashfs" && !strings.Contains(string(o), "squashfs-root/sbin/init") {
			t.Errorf("unsquashfs -l lacks sbin/init:\n%s", o)
		}
	}
}

// imageBoot boots img with a given kernel and initramfs on the lab's
// board and returns the probe's run.
func imageBoot(t *testing.T, s *bootlab.Setup, kernel, initrd, img string, words []string) *bootlab.Run {
	t.Helper()
	s2 := *s
	s2.Kernel.Vmlinuz = kernel
	run := runBoot(t, &s2, bootlab.RunSpec{Initrd: initrd, Image: img, Append: words})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	if run.Report.PID != 1 {
		t.Errorf("probe ran as PID %d, want 1", run.Report.PID)
	}
	return run
}

// assertImageProtected: / the overlay, the image's root partition
// read-only at /mnt/root-RO with its type, writes land in RAM.
func assertImageProtected(t *testing.T, run *bootlab.Run, device, fstype string) {
	t.Helper()
	r := run.Report
	assertNot(t, run.Console, "DEGRADED", "a degraded boot")
	if m, ok := r.MountAt("/"); !ok || m.FSType != "overlay" || m.Source != "overlayfs-root" || m.ReadOnly() {
		t.Errorf("/ = %+v, want a rw overlay named overlayfs-root", m)
	}
	if m, ok := r.MountAt("/mnt/root-RO"); !ok || m.FSType != fstype || m.Source != device || !m.ReadOnly() {
		t.Errorf("/mnt/root-RO = %+v, want %s (%s) mounted ro", m, device, fstype)
	}
	if r.WriteRoot != "ok" || r.InUpper != "present" || r.InLower != "absent" || r.WriteRO != "EROFS" {
		t.Errorf("writes: / %q, in upper %q, in lower %q, under /mnt/root-RO %q; want ok, present, absent, EROFS", r.WriteRoot, r.InUpper, r.InLower, r.WriteRO)
	}
	if st := r.Status; st == nil || st.Mode != bootstatus.Protected {
		t.Errorf("status %+v (%s), want mode protected", st, r.StatusError)
	}
}

// TestImageInstallForeign installs ofsroot into an image made with
// other tools: a Debian root from `debootstrap --variant=minbase`, the
// lab's Debian kernel installed in it (modules pruned to the storage and
// filesystem drivers to keep the image small), an extlinux.conf as
// Debian's u-boot-menu writes one, put into one ext4 partition with
// sfdisk and mkfs.ext4 -d. The install builds the initramfs from the
// image's own kernel; the boot uses the files and command line read back
// from the image.
func TestImageInstallForeign(t *testing.T) {
	t.Parallel()
	needImageTools(t)
	l := getLab(t, "qemu-x86_64")
	s := l.setup
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	base, err := bootlab.Debootstrap(cache, "bookworm", "amd64")
	if err != nil {
		t.Fatalf("%v (the test needs Debian's mirror once; the result is cached)", err)
	}
	dir := filepath.Join(runDir, "install-foreign")
	root := filepath.Join(dir, "root")
	os.MkdirAll(dir, 0o755)
	sh(t, "cp", "-a", base, root)
	v := s.Kernel.Version
	sh(t, "cp", "-a", filepath.Join(s.Kernel.Dir, "boot/vmlinuz-"+v), filepath.Join(root, "boot/"))
	mods := filepath.Join(root, "usr/lib/modules", v)
	os.MkdirAll(filepath.Join(mods, "kernel/drivers"), 0o755)
	src := filepath.Join(s.Kernel.Dir, "lib/modules", v)
	files, _ := filepath.Glob(filepath.Join(src, "modules.*"))
	sh(t, "cp", append(append([]string{"-a"}, files...), mods)...)
	for _, d := range []string{"fs", "lib", "crypto", "arch", "drivers/block", "drivers/virtio"} {
		sh(t, "cp", "-a", filepath.Join(src, "kernel", d), filepath.Join(mods, "kernel", filepath.Dir(d)))
	}
	// The probe is the real init (sbin is a link to usr/sbin in bookworm).
	sh(t, "cp", s.Probe, filepath.Join(root, "usr/sbin/init"))
	os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("PARTUUID=5eed0001-01 / ext4 defaults 0 1\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "boot/extlinux"), 0o755)
	extlinux := fmt.Sprintf("default l0\nmenu title U-Boot menu\ntimeout 50\n\nlabel l0\n\tmenu label Debian GNU/Linux 12 (bookworm) %s\n\tlinux /boot/vmlinuz-%s\n\tinitrd /boot/initrd.img-%s\n\tappend root=PARTUUID=5eed0001-01 ro\n", v, v, v)
	os.WriteFile(filepath.Join(root, "boot/extlinux/extlinux.conf"), []byte(extlinux), 0o644)

	// The foreign image: sfdisk and mkfs.ext4, not ours.
	st, _ := diskimage.MeasureTree(root)
	fsSize := (st.Bytes*13/10/diskimage.MiB + 64) * diskimage.MiB
	img := filepath.Join(dir, "foreign.img")
	sh(t, "truncate", "-s", fmt.Sprint(fsSize+diskimage.MiB), img)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nlabel-id: 0x5eed0001\nstart=2048, type=83\n")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, o)
	}
	sh(t, "mkfs.ext4", "-q", "-d", root, "-E", fmt.Sprintf("offset=%d", diskimage.MiB), img, fmt.Sprintf("%dk", fsSize/1024))

	res, err := imageinstall.Install(imageinstall.Options{Board: s.Board, Target: img, SourceDateEpoch: bootlab.SourceDateEpoch,
		Log: func(f string, a ...any) { t.Logf(f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, c := range res.Changes {
		changes = append(changes, c.String())
	}
	got := strings.Join(changes, "\n")
	for _, want := range []string{"added    /boot/initrd.img-" + v + ": ofsroot initramfs for qemu-x86_64",
		"edited   /boot/extlinux/extlinux.conf: 1 append line(s) now have overlayfs=yes ofs-size=20 (the old one is kept as extlinux.conf.ofsroot-old)"} {
		if !strings.Contains(got, want) {
			t.Errorf("changes lack %q:\n%s", want, got)
		}
	}
	if len(res.Changes) != 2 {
		t.Errorf("%d changes, want 2:\n%s", len(res.Changes), got)
	}
	target := fmt.Sprintf("%s?offset=%d", img, diskimage.MiB)
	if o, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the install: %v\n%s", err, o)
	}
	kernel := filepath.Join(dir, "vmlinuz")
	initrd := filepath.Join(dir, "initrd.img")
	sh(t, "debugfs", "-R", fmt.Sprintf("dump /boot/vmlinuz-%s %s", v, kernel), target)
	sh(t, "debugfs", "-R", fmt.Sprintf("dump /boot/initrd.img-%s %s", v, initrd), target)
	conf, err := exec.Command("debugfs", "-R", "cat /boot/extlinux/extlinux.conf", target).Output()
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, line := range strings.Split(string(conf), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "append" {
			words = f[1:]
		}
	}
	if strings.Join(words, " ") != "root=PARTUUID=5eed0001-01 ro overlayfs=yes ofs-size=20" {
		t.Fatalf("extlinux.conf append line after the install: %q\n%s", words, conf)
	}
	run := imageBoot(t, s, kernel, initrd, img, words)
	assertImageProtected(t, run, "/dev/vda1", "ext4")
	assertImageUnchanged(t, run)
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if o, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, o)
	}
}
