//go:build devicetest

// TestDeviceX86 runs in `make test-device`, not in `make test`: its seven
// boots of a whole Debian PC (apt, dpkg and mkinitramfs under TCG) take
// about 10 minutes of QEMU, which with the rest of the matrix would pass
// CI's 30 minutes on two cores.

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// deviceRootUUID is the device's root filesystem UUID (fstab, GRUB).
const deviceRootUUID = "5eed0086-0000-4000-8000-00000000f10e"

// devicePackages are the Debian packages of the device's root, beyond
// minbase: systemd as init (with udev and dbus, as a stock install),
// GRUB for BIOS PCs, Debian's own initramfs generator, and zstd, which
// the steps use to read ofsroot's initramfs (zstd on amd64).
var devicePackages = []string{"dbus", "grub-pc", "initramfs-tools", "linux-base", "systemd-sysv", "udev", "zstd"}

// TestDeviceX86 is the package's life on an x86 PC, as a user lives it:
// a Debian bookworm root with systemd, Debian's kernel package (the one
// the lab caches) and GRUB installed in the disk's MBR (BIOS, as
// QEMU's SeaBIOS boots it: no -kernel, no -initrd, the firmware boots the
// disk). Each boot the guest runs a step script the test writes on a
// second small disk (a systemd unit of the image reads it), which prints
// `OFSFLOW key value` lines on the serial console and powers off:
//
//  1. Debian's own boot (initramfs-tools): apt install ./ofsroot_*.deb
//     (offline; initramfs-tools goes) → the kernel's initrd is ofsroot's,
//     grub.cfg passes the toggles;
//  2. protected: status.json mode protected, systemd running with no
//     failed unit, a write to / works; the disk's bytes are unchanged
//     across the boot;
//  3. protected: the previous boot's write is gone; ofsctl overlay off;
//  4. plain and writable; the kernel package reinstalled from its .deb
//     (its initrd deleted first) → the initrd is ofsroot's again;
//     ofsctl overlay on;
//  5. protected, on the initrd the kernel's installation built; ofsctl
//     overlay once;
//  6. the maintenance boot (once): plain; apt install initramfs-tools
//     (offline: its .deb from apt's cache) replaces ofsroot → the initrd is
//     initramfs-tools', grub.cfg passes no toggle;
//  7. the device boots Debian's initramfs, writable, with no failed unit.
func TestDeviceX86(t *testing.T) {
	t.Parallel()
	b, err := board.Lookup("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	needHost(t, b)
	for _, tool := range []string{"dpkg-deb", "unshare", "sfdisk", "mkfs.ext4", "grub-mkimage", "grub-editenv", "debootstrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh", tool)
		}
	}
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := bootlab.FetchKernel(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel package from the mirror is the lab's cached one (the
	// lab fetches the current one); its initrd is initramfs-tools'.
	base, err := bootlab.Debootstrap(cache, "bookworm", "amd64", append([]string{kernel.Package}, devicePackages...)...)
	if err != nil {
		t.Fatalf("%v (the test needs Debian's mirror once; the result is cached)", err)
	}
	dir := filepath.Join(runDir, "device-x86")
	os.MkdirAll(dir, 0o755)
	deb := buildDeb(t, filepath.Join(dir, "deb"), "1.0.0")
	start := time.Now()
	disk := deviceDisk(t, dir, base, kernel, deb)
	t.Logf("device disk built in %.0fs: %s", time.Since(start).Seconds(), disk)
	v := kernel.Version
	debName := "/var/tmp/ofsflow/" + filepath.Base(deb)
	kernelDeb := "/var/tmp/ofsflow/" + filepath.Base(kernel.Deb)

	// 1. Debian's boot; Debian's grub.cfg; install the package.
	r := deviceBoot(t, b, dir, disk, 1, `
update-grub; say update-grub $?
apt-get install -y `+debName+` </dev/null; say apt $?
say initrd-after $(initrd_of `+v+`)
say grub-linux $(grep -c '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg) $(grep '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | grep -c 'ofsroot_args')
say generator $(dpkg-query -W -f '${db:Status-Abbrev}' initramfs-tools 2>/dev/null || echo gone)
`)
	r.healthy(t)
	r.plain(t, "none")
	r.want(t, "initrd", "initramfs-tools")
	r.want(t, "update-grub", "0")
	r.want(t, "apt", "0")
	r.ofsrootInitrd(t, "initrd-after", v)
	if n := strings.Fields(r.get(t, "grub-linux")); len(n) != 2 || n[0] != n[1] || n[0] == "0" {
		t.Errorf("boot 1: grub.cfg's linux lines, and those with ${ofsroot_args}: %v, want as many", n)
	}
	r.want(t, "generator", "rc") // removed, its conffiles kept
	r.want(t, "marker", "none")

	// 2. Protected, untouched.
	before := fileSHA(t, disk)
	r = deviceBoot(t, b, dir, disk, 2, "")
	r.healthy(t)
	r.protected(t, v)
	r.want(t, "marker", "step 1")
	r.want(t, "marker-written", "ok")
	if fileSHA(t, disk) != before {
		t.Errorf("the disk changed across the protected boot 2")
	}

	// 3. Protected: boot 2's write is gone; overlay off.
	r = deviceBoot(t, b, dir, disk, 3, `
ofsctl overlay off; say ofsctl $?
`)
	r.healthy(t)
	r.protected(t, v)
	r.want(t, "marker", "step 1")
	r.want(t, "ofsctl", "0")

	// 4. Plain: reinstall the kernel; overlay on.
	r = deviceBoot(t, b, dir, disk, 4, `
rm -f /boot/initrd.img-`+v+`
dpkg -i `+kernelDeb+` </dev/null; say dpkg $?
say initrd-after $(initrd_of `+v+`)
ofsctl overlay on; say ofsctl $?
`)
	r.healthy(t)
	r.plain(t, "no")
	r.want(t, "marker", "step 1")
	r.want(t, "dpkg", "0")
	r.ofsrootInitrd(t, "initrd-after", v)
	r.want(t, "ofsctl", "0")

	// 5. Protected on the kernel installation's initrd; one maintenance boot.
	r = deviceBoot(t, b, dir, disk, 5, `
ofsctl overlay once; say ofsctl $?
`)
	r.healthy(t)
	r.protected(t, v)
	r.want(t, "marker", "step 4")
	r.want(t, "ofsctl", "0")

	// 6. The maintenance boot: Debian's generator replaces ofsroot.
	r = deviceBoot(t, b, dir, disk, 6, `
say remove-would $(apt-get -s remove ofsroot </dev/null | grep -E '^(Inst|Remv) ' | cut -d' ' -f1,2 | tr '\n' ' ')
apt-get install -y /var/cache/apt/archives/initramfs-tools_*.deb </dev/null; say apt $?
say initrd-after $(initrd_of `+v+`)
say grub-linux $(grep -c '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg) $(grep '^[[:space:]]*linux[[:space:]]' /boot/grub/grub.cfg | grep -c 'ofsroot_args')
say ofsroot $(dpkg-query -W -f '${db:Status-Abbrev}' ofsroot 2>/dev/null || echo gone)
`)
	r.healthy(t)
	r.plain(t, "no")
	assertHas(t, r.Console, "ofsroot: ofs_once: a maintenance boot")
	r.want(t, "marker", "step 4")
	// Without package lists (hidden here) apt cannot put initramfs-tools
	// in ofsroot's place, and would remove the kernel with it (README).
	t.Logf("boot 6: apt-get remove ofsroot would: %s", r.get(t, "remove-would"))
	r.want(t, "apt", "0")
	r.want(t, "initrd-after", "initramfs-tools")
	if n := strings.Fields(r.get(t, "grub-linux")); len(n) != 2 || n[1] != "0" || n[0] == "0" {
		t.Errorf("boot 6: grub.cfg's linux lines, and those with ${ofsroot_args}: %v, want none with it", n)
	}
	r.want(t, "ofsroot", "rc") // removed, its conffiles kept

	// 7. Debian's boot again.
	r = deviceBoot(t, b, dir, disk, 7, "")
	r.healthy(t)
	r.plain(t, "none")
	r.want(t, "initrd", "initramfs-tools")
	r.want(t, "marker", "step 6")
}

// deviceRun is one boot of the device and the OFSFLOW lines it printed.
type deviceRun struct {
	*bootlab.Console
	step   int
	values map[string][]string
}

// deviceStepPrelude runs first in every step: what every boot reports.
const deviceStepPrelude = `set -u
say() { echo "OFSFLOW $*"; }
# initrd_of VERSION: whose /boot/initrd.img-VERSION is (ofsroot's build.json).
initrd_of() {
	f=/boot/initrd.img-$1
	[ -e "$f" ] || { echo missing; return; }
	# zstd is ofsroot's default on amd64; zcat for gzip ones (and where zstd is not installed).
	info=$( (zstd -dcq "$f" 2>/dev/null || zcat "$f" 2>/dev/null) | cpio -i --quiet --to-stdout etc/ofsroot/build.json 2>/dev/null | tr -d '\n')
	if [ -n "$info" ]; then
		echo "ofsroot $info"
	elif lsinitramfs "$f" 2>/dev/null | grep -qx 'scripts/local'; then
		echo initramfs-tools
	else
		echo unknown
	fi
}
say system $(systemctl is-system-running --wait 2>&1)
systemctl --failed --no-legend --plain --no-pager 2>&1 | while read -r unit rest; do say failed $unit; done
say kernel $(uname -r)
say cmdline $(cat /proc/cmdline)
if [ -r /run/ofsroot/status.json ]; then say status $(tr -d '\n' </run/ofsroot/status.json); else say status none; fi
say root $(findmnt -n -o FSTYPE,OPTIONS /)
say initrd $(initrd_of $(uname -r))
say marker $(cat /var/lib/ofsflow-marker 2>/dev/null || echo none)
if echo "step $STEP" >/var/lib/ofsflow-marker; then say marker-written ok; else say marker-written failed; fi
`

// deviceBoot writes step's script (after the prelude) on the step disk
// and boots the device from disk with it, until the guest powers off.
func deviceBoot(t *testing.T, b board.Board, dir, disk string, step int, script string) *deviceRun {
	t.Helper()
	steps := filepath.Join(dir, "steps.img")
	text := fmt.Sprintf("STEP=%d\n%s%s\nsay end\nsync\nsystemctl poweroff\n", step, deviceStepPrelude, script)
	if err := os.WriteFile(steps, append([]byte(text), make([]byte, 1<<20-len(text))...), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("boot%d", step)
	spec := bootlab.BootSpec{Board: b, Disk: disk, ExtraDisks: []string{steps}, FirmwareBoot: true,
		Timeout: 15 * time.Minute, Log: filepath.Join(dir, name+".log")}
	bootSem <- struct{}{}
	c, err := bootlab.Boot(context.Background(), spec)
	<-bootSem
	if c != nil {
		statsMu.Lock()
		stats = append(stats, bootStat{t.Name() + "/" + name, c.Duration})
		statsMu.Unlock()
		t.Logf("boot %d: %.1fs", step, c.Duration.Seconds())
	}
	if err != nil {
		if c != nil {
			t.Logf("console tail:\n%s", tail(c.Text, 80))
		}
		t.Fatalf("boot %d: %v", step, err)
	}
	r := &deviceRun{Console: c, step: step, values: map[string][]string{}}
	for _, l := range c.Lines("OFSFLOW ") {
		kv := strings.SplitN(l[strings.Index(l, "OFSFLOW ")+len("OFSFLOW "):], " ", 2)
		if len(kv) == 1 {
			kv = append(kv, "")
		}
		r.values[kv[0]] = append(r.values[kv[0]], strings.TrimSpace(kv[1]))
	}
	if len(r.values["end"]) != 1 {
		t.Fatalf("boot %d: the step script did not run to its end; console in %s, tail:\n%s", step, c.Log, tail(c.Text, 80))
	}
	return r
}

// get returns the one value of key.
func (r *deviceRun) get(t *testing.T, key string) string {
	t.Helper()
	v := r.values[key]
	if len(v) != 1 {
		t.Errorf("boot %d: %d values of %s: %q (console in %s)", r.step, len(v), key, v, r.Log)
		return ""
	}
	return v[0]
}

// want checks key's value; a want ending in a space is a prefix.
func (r *deviceRun) want(t *testing.T, key, want string) {
	t.Helper()
	got := r.get(t, key)
	if got != want && !(strings.HasSuffix(want, " ") && strings.HasPrefix(got, want)) {
		t.Errorf("boot %d: %s = %q, want %q (console in %s)", r.step, key, got, want, r.Log)
	}
}

// ofsrootInitrd: key says the initrd is ofsroot's (its build.json), built
// by this package for kernel v.
func (r *deviceRun) ofsrootInitrd(t *testing.T, key, v string) {
	t.Helper()
	got := r.get(t, key)
	var info initramfs.BuildInfo
	j, ok := strings.CutPrefix(got, "ofsroot ")
	if !ok || json.Unmarshal([]byte(j), &info) != nil || info.KernelVersion != v || info.OfsrootVersion != "1.0.0" {
		t.Errorf("boot %d: %s = %q, want ofsroot's build.json for kernel %s, ofsroot 1.0.0 (console in %s)", r.step, key, got, v, r.Log)
	}
}

// healthy: systemd reached its target with no failed unit.
func (r *deviceRun) healthy(t *testing.T) {
	t.Helper()
	r.want(t, "system", "running")
	if f := r.values["failed"]; len(f) > 0 {
		t.Errorf("boot %d: failed units %q (console in %s)", r.step, f, r.Log)
	}
	assertNot(t, r.Console, "Kernel panic", "kernel panic")
}

// status is the boot's /run/ofsroot/status.json, nil when there is none.
func (r *deviceRun) status(t *testing.T) *bootstatus.Status {
	t.Helper()
	s := r.get(t, "status")
	if s == "none" || s == "" {
		return nil
	}
	var st bootstatus.Status
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Errorf("boot %d: status.json: %v: %s", r.step, err, s)
		return nil
	}
	return &st
}

// protected: ofsroot's init protected the root with kernel v's initrd.
func (r *deviceRun) protected(t *testing.T, v string) {
	t.Helper()
	st := r.status(t)
	if st == nil || st.Mode != bootstatus.Protected || st.OfsrootVersion != "1.0.0" || st.Kernel != v {
		t.Errorf("boot %d: status.json %+v, want mode protected, ofsroot 1.0.0, kernel %s", r.step, st, v)
	}
	r.ofsrootInitrd(t, "initrd", v)
	if root := r.get(t, "root"); !strings.HasPrefix(root, "overlay rw,") {
		t.Errorf("boot %d: / is %q, want the overlay", r.step, root)
	}
	if c := r.get(t, "cmdline"); !strings.Contains(c, "overlayfs=yes") {
		t.Errorf("boot %d: command line %q lacks overlayfs=yes", r.step, c)
	}
}

// plain: a writable ext4 root; requested is status.json's
// overlay_requested, or "none" for a boot without ofsroot's init.
func (r *deviceRun) plain(t *testing.T, requested string) {
	t.Helper()
	st := r.status(t)
	switch {
	case requested == "none" && st != nil:
		t.Errorf("boot %d: status.json from a boot without ofsroot: %+v", r.step, st)
	case requested != "none" && (st == nil || st.Mode != bootstatus.Plain || st.Requested != requested):
		t.Errorf("boot %d: status.json %+v, want mode plain, overlay_requested %s", r.step, st, requested)
	}
	if root := r.get(t, "root"); !strings.HasPrefix(root, "ext4 rw,") {
		t.Errorf("boot %d: / is %q, want ext4 read-write", r.step, root)
	}
	r.want(t, "marker-written", "ok")
}

// deviceUnit runs the step script from the second disk at each boot.
const deviceUnit = `[Unit]
Description=ofsroot device test: the step on /dev/vdb
ConditionPathExists=/dev/vdb

[Service]
Type=simple
ExecStart=/usr/local/sbin/ofsflow-step

[Install]
WantedBy=multi-user.target
`

const deviceRunner = `#!/bin/sh
# The test host writes each boot's step script on /dev/vdb (NUL-padded).
exec >/dev/ttyS0 2>&1
tr -d '\000' </dev/vdb >/run/ofsflow-step.sh
exec /bin/sh /run/ofsflow-step.sh
`

// deviceDisk makes the device's disk in dir: an MBR disk with one ext4
// partition holding base (a debootstrap root with the kernel package
// installed: initramfs-tools built its initrd) plus, from an upper
// folder laid over it, the device's configuration, the ofsroot package
// and the kernel's .deb in /var/tmp/ofsflow, and GRUB for BIOS as
// grub-install lays it out: boot.img in the MBR, a core.img (made by
// grub-mkimage from the root's own GRUB modules) in the gap before the
// partition, the modules in /boot/grub/i386-pc, an empty grubenv. The
// first grub.cfg is a minimal one (grub-mkconfig cannot probe a folder
// for its disk); the first boot runs Debian's update-grub. No loop
// device: this host's loop devices do not show partitions.
func deviceDisk(t *testing.T, dir, base string, kernel bootlab.Kernel, deb string) string {
	t.Helper()
	v := kernel.Version
	upper := filepath.Join(dir, "upper")
	os.RemoveAll(upper)
	write := func(p, s string, mode os.FileMode) {
		p = filepath.Join(upper, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/fstab", "UUID="+deviceRootUUID+" / ext4 errors=remount-ro 0 1\n", 0o644)
	write("etc/hostname", "ofsflow\n", 0o644)
	write("etc/default/grub.d/ofsflow.cfg", `GRUB_TIMEOUT=0
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
`, 0o644)
	write("boot/grub/grub.cfg", `serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry 'Debian GNU/Linux' {
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root `+deviceRootUUID+`
	linux /boot/vmlinuz-`+v+` root=UUID=`+deviceRootUUID+` ro console=ttyS0
	initrd /boot/initrd.img-`+v+`
}
`, 0o644)
	// initramfs-tools' default, MODULES=most, has mkinitramfs copy and
	// compress every driver: it ran past 15 minutes in the last step under
	// emulation on a loaded host. dep takes this machine's, as many
	// installs are set to (the debootstrap root's own initrd is "most").
	write("etc/initramfs-tools/conf.d/ofsflow", "MODULES=dep\n", 0o644)
	write("etc/systemd/system/ofsflow.service", deviceUnit, 0o644)
	write("usr/local/sbin/ofsflow-step", deviceRunner, 0o755)
	for _, l := range []struct{ link, target string }{
		{"etc/systemd/system/multi-user.target.wants/ofsflow.service", "/etc/systemd/system/ofsflow.service"},
		// The console is the test's: no login prompt on it.
		{"etc/systemd/system/serial-getty@ttyS0.service", "/dev/null"},
		// No network: apt's daily update could only fail.
		{"etc/systemd/system/apt-daily.timer", "/dev/null"},
		{"etc/systemd/system/apt-daily-upgrade.timer", "/dev/null"},
	} {
		p := filepath.Join(upper, l.link)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(l.target, p); err != nil {
			t.Fatal(err)
		}
	}
	// Hidden from the device (overlayfs whiteouts): the mirror's package
	// list, which apt would parse for minutes under emulation (the guest
	// has no network; it installs local .debs), and the cached .debs but
	// initramfs-tools', which the last step installs.
	hide, _ := filepath.Glob(filepath.Join(base, "var/lib/apt/lists/*_*"))
	debs, _ := filepath.Glob(filepath.Join(base, "var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		if !strings.HasPrefix(filepath.Base(d), "initramfs-tools") {
			hide = append(hide, d)
		}
	}
	for _, h := range hide {
		w := filepath.Join(upper, strings.TrimPrefix(h, base))
		os.MkdirAll(filepath.Dir(w), 0o755)
		if err := unix.Mknod(w, unix.S_IFCHR, 0); err != nil {
			t.Fatalf("whiteout %s: %v", w, err)
		}
	}
	files := filepath.Join(upper, "var/tmp/ofsflow")
	os.MkdirAll(files, 0o755)
	sh(t, "cp", deb, kernel.Deb, files)
	grubLib := filepath.Join(base, "usr/lib/grub/i386-pc")
	sh(t, "cp", "-r", grubLib, filepath.Join(upper, "boot/grub/i386-pc"))
	sh(t, "grub-editenv", filepath.Join(upper, "boot/grub/grubenv"), "create")
	core := filepath.Join(dir, "core.img")
	sh(t, "grub-mkimage", "-d", grubLib, "-O", "i386-pc", "-p", "(hd0,msdos1)/boot/grub", "-o", core, "biosdisk", "part_msdos", "ext2")

	var mib int
	for _, d := range []string{base, upper} {
		out, err := exec.Command("du", "-sm", d).Output()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(string(out), &n)
		mib += n
	}
	// Room for a kernel package's reinstall (dpkg unpacks beside the old files).
	fsMiB := mib*13/10 + 800
	img := filepath.Join(dir, "disk.img")
	os.Remove(img)
	sh(t, "truncate", "-s", fmt.Sprintf("%dM", fsMiB+1), img)
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83, bootable\n")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, o)
	}
	// The filesystem from base with upper laid over it, in a private mount
	// namespace: nothing stays mounted, base is not written.
	mnt, work := filepath.Join(dir, "mnt"), filepath.Join(dir, "work")
	os.MkdirAll(mnt, 0o755)
	os.MkdirAll(work, 0o755)
	// The cached root's name has commas, which the mount options cannot.
	lower := filepath.Join(dir, "base")
	os.Remove(lower)
	if err := os.Symlink(base, lower); err != nil {
		t.Fatal(err)
	}
	script := `mount -t overlay -o "lowerdir=$2,upperdir=$3,workdir=$4" ofsflow "$5"
mkfs.ext4 -q -U "$6" -E offset=1048576 -d "$5" "$1" "$7"
`
	cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec", script, "sh",
		img, lower, upper, work, mnt, deviceRootUUID, fmt.Sprintf("%dM", fsMiB))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the device's filesystem: %v\n%s", err, o)
	}
	// GRUB's first stage in the MBR's code area (the partition table
	// stays), its core right after the MBR: both as grub-install does.
	bootImg, err := os.ReadFile(filepath.Join(grubLib, "boot.img"))
	if err != nil {
		t.Fatal(err)
	}
	coreImg, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	if len(bootImg) != 512 || len(coreImg) > 2047*512 {
		t.Fatalf("boot.img is %d bytes, core.img %d: they do not fit", len(bootImg), len(coreImg))
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bootImg[:440], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(coreImg, 512); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(upper)
	return img
}
