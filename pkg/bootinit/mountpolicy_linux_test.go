package bootinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/fstab"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

// partImage makes a small ext4 image labelled label holding one file and
// attaches it to a loop device.
func partImage(t *testing.T, dir, label string) (img, loop string) {
	t.Helper()
	src := filepath.Join(dir, label+"-src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "original"), []byte(label+"\n"), 0o644)
	img = filepath.Join(dir, label+".img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, "-L", label, img, "4M")
	return img, attach(t, img)
}

// TestMountPolicyForReal protects /boot, makes /var/log read-only and
// keeps /data, on real ext4 devices in a private mount namespace, then
// mounts the kept and read-only lines of the rewritten fstab as a real
// init would and writes everywhere: /data's device changes (so the
// check can fail), /boot's and /var/log's do not.
func TestMountPolicyForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "mkfs.ext4", "losetup", "e2fsck")
	dir := t.TempDir()
	// Labels unique to this run: other tests may have loop devices too.
	tag := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	lBoot, lData, lLog := "b"+tag, "d"+tag, "l"+tag
	bootImg, bootLoop := partImage(t, dir, lBoot)
	dataImg, dataLoop := partImage(t, dir, lData)
	logImg, logLoop := partImage(t, dir, lLog)

	src := filepath.Join(dir, "root")
	for _, d := range []string{"etc/ofsroot", "sbin", "mnt", "dev", "proc", "sys", "run", "boot", "data", "var/log"} {
		os.MkdirAll(filepath.Join(src, d), 0o755)
	}
	fst := fmt.Sprintf("/dev/vda / ext4 defaults 0 1\nLABEL=%s /boot ext4 defaults 0 2\nLABEL=%s /data ext4 defaults,nofail 0 2\nLABEL=%s /var/log ext4 defaults 0 2\n", lBoot, lData, lLog)
	os.WriteFile(filepath.Join(src, "etc/fstab"), []byte(fst), 0o644)
	// The file asks /var/log ro and /boot keep; the command line's
	// /boot:protect wins.
	os.WriteFile(filepath.Join(src, "etc/ofsroot/ofsroot.conf"), []byte("BOARD=\"\"\nMOUNTS=\"/var/log:ro /boot:keep\"\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sbin/init"), []byte("#!/bin/sh\n"), 0o755)
	rootImg := filepath.Join(dir, "root.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, "-L", "r"+tag, rootImg, "16M")
	rootLoop := attach(t, rootImg)

	before := map[string]string{}
	for _, img := range []string{rootImg, bootImg, dataImg, logImg} {
		before[img] = sha(t, img)
	}

	cfg := cmdline.Default()
	cfg.Overlay, cfg.Size = cmdline.OverlayOn, cmdline.Size{Percent: 10}
	cfg.Mounts = []cmdline.MountRule{{Mount: "/boot", Policy: cmdline.MountProtect}, {Mount: "/srv", Policy: cmdline.MountRO}}
	b, _ := testBoot(t, rootLoop, cfg)
	steps := append([]Step{b.writeProtect(), b.mountRealRoot(b.paths.ro, true)}, b.overlaySteps()...)
	if err := b.x.Run(steps...); err != nil {
		t.Fatal(err)
	}
	steps = append(b.mountPolicySteps(), b.moveLayersSteps()...)
	if err := b.x.Run(append(steps, b.rewriteFstab())...); err != nil {
		t.Fatal(err)
	}
	for _, s := range b.x.Steps {
		if s.Error != "" {
			t.Errorf("step %q failed: %s", s.Name, s.Error)
		}
	}
	nr := b.paths.newRoot

	// /boot: an overlay over the write-protected device, written in RAM.
	if ro, err := blockdev.IsReadOnly(bootLoop); err != nil || !ro {
		t.Errorf("/boot's device %s not write-protected: %v %v", bootLoop, ro, err)
	}
	if err := os.WriteFile(nr+"/boot/new-kernel", []byte("x"), 0o644); err != nil {
		t.Errorf("writing /boot: %v", err)
	}
	if got, err := os.ReadFile(nr + "/boot/original"); err != nil || string(got) != lBoot+"\n" {
		t.Errorf("/boot/original: %q %v", got, err)
	}
	if _, err := os.Stat(nr + "/mnt/root-RW/mounts/boot/upper/new-kernel"); err != nil {
		t.Errorf("the /boot write is not in the RAM layer: %v", err)
	}
	if err := os.WriteFile(b.paths.run+"/ofsroot/mounts/boot/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("/boot's lower is writable: %v", err)
	}

	// The rewritten fstab, mounted as the real init would: /boot's line
	// is a comment, /var/log's is ro, /data's as it was.
	out, _ := os.ReadFile(nr + "/etc/fstab")
	var mounted []string
	for _, l := range fstab.Parse(out) {
		e := l.Entry
		if e == nil || e.IsRoot() || e.File == bootstatus.ReadOnlyLayer {
			continue
		}
		if e.File == "/boot" {
			t.Errorf("fstab still mounts /boot: %q", l.Raw)
		}
		flags, data := mountfs.ParseOptions(mountOptions(e.MntOps))
		dev := map[string]string{"LABEL=" + lData: dataLoop, "LABEL=" + lLog: logLoop}[e.Spec]
		if err := mountfs.Mount(dev, nr+e.File, e.VfsType, flags, data); err != nil {
			t.Fatalf("mount %q: %v", l.Raw, err)
		}
		mounted = append([]string{nr + e.File}, mounted...)
	}
	if err := os.WriteFile(nr+"/var/log/syslog", []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("/var/log writable: %v", err)
	}
	if err := os.WriteFile(nr+"/data/kept", []byte("x"), 0o644); err != nil {
		t.Errorf("/data not writable: %v", err)
	}
	for _, s := range []string{"# ofsroot: /boot is protected (protect from ofs-mounts=)", "# ofsroot: /var/log made read-only (ro from ofsroot.conf)", "\nLABEL=" + lLog + " /var/log ext4 ro 0 0\n", "\nLABEL=" + lData + " /data ext4 defaults,nofail 0 2\n"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("fstab lacks %q:\n%s", s, out)
		}
	}
	got := map[string]bootstatus.Mount{}
	for _, m := range b.status.Mounts {
		got[m.Mount] = m
	}
	if m := got["/boot"]; m.Result != "protected" || m.Device != bootLoop || m.Lower != "/run/ofsroot/mounts/boot" || m.Upper != "/mnt/root-RW/mounts/boot/upper" {
		t.Errorf("status /boot: %+v", m)
	}
	if got["/var/log"].Result != "read-only" || got["/data"].Result != "kept" || got["/var/log"].From != "ofsroot.conf" {
		t.Errorf("status: %+v", b.status.Mounts)
	}
	if !strings.Contains(strings.Join(b.status.Warnings, "\n"), "ro for /srv, which is not a mount") {
		t.Errorf("no warning for /srv: %q", b.status.Warnings)
	}

	for _, m := range mounted {
		if err := unix.Unmount(m, 0); err != nil {
			t.Fatalf("umount %s: %v", m, err)
		}
	}
	settle(t, bootLoop, nr+"/boot", b.paths.run+"/ofsroot/mounts/boot", nr+"/mnt/root-RW", nr+"/mnt/root-RO", nr)
	for _, l := range []string{rootLoop, dataLoop, logLoop} {
		detach(l)
	}
	unix.Sync()
	for img, h := range before {
		changed := sha(t, img) != h
		if want := img == dataImg; changed != want {
			t.Errorf("%s: changed %v, want %v", filepath.Base(img), changed, want)
		}
		run(t, "e2fsck", "-fn", img)
	}
}

// TestProtectMountFailsReadOnly: a protect whose device is missing ends
// as a read-only line, loudly, never as the writable original.
func TestProtectMountFailsReadOnly(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	_, loop := testRoot(t)
	cfg := cmdline.Default()
	cfg.Overlay, cfg.Size = cmdline.OverlayOn, cmdline.Size{Percent: 10}
	cfg.Mounts = []cmdline.MountRule{{Mount: "/boot", Policy: cmdline.MountProtect}}
	b, _ := testBoot(t, loop, cfg)
	if err := b.x.Run(append([]Step{b.mountRealRoot(b.paths.ro, true)}, b.overlaySteps()...)...); err != nil {
		t.Fatal(err)
	}
	// The root's fstab gains a /boot line naming a device that is not
	// there (written into the RAM layer: the test root is read-only).
	fst, _ := os.ReadFile(b.paths.ro + "/etc/fstab")
	fst = append(fst, "LABEL=no-such-boot-partition /boot ext4 defaults 0 2\n"...)
	realRO := b.paths.ro
	b.paths.ro = b.paths.newRoot // read the fstab through the overlay
	os.WriteFile(b.paths.newRoot+"/etc/fstab", fst, 0o644)
	old := MountDeviceWait
	MountDeviceWait = 200 * time.Millisecond
	defer func() { MountDeviceWait = old }()
	if err := b.x.Run(append(b.mountPolicySteps(), b.rewriteFstab())...); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(b.paths.newRoot + "/etc/fstab")
	if !strings.Contains(string(out), "\nLABEL=no-such-boot-partition /boot ext4 ro 0 0\n") {
		t.Errorf("failed protect not read-only:\n%s", out)
	}
	found := false
	for _, m := range b.status.Mounts {
		if m.Mount == "/boot" {
			found = m.Result == resultProtectFailed && strings.Contains(m.Note, "no-such-boot-partition")
		}
	}
	if !found {
		t.Errorf("status %+v", b.status.Mounts)
	}
	settle(t, loop, b.paths.newRoot, b.paths.rw, realRO)
}

// TestHostileOfsrootConf: whatever /etc/ofsroot/ofsroot.conf is, reading
// MOUNTS= ends (no hang, no unbounded read), never reads the initramfs's
// own files, and a file that is there but unusable is reported.
func TestHostileOfsrootConf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		make  func(dir string) error
		want  []cmdline.MountRule
		warns bool
	}{
		{"fifo", func(d string) error { return unix.Mkfifo(d+"/ofsroot.conf", 0o644) }, nil, true},
		{"huge", func(d string) error {
			f, err := os.Create(d + "/ofsroot.conf")
			if err == nil {
				err = f.Truncate(confLimit + 1)
				f.Close()
			}
			return err
		}, nil, true},
		{"folder", func(d string) error { return os.Mkdir(d+"/ofsroot.conf", 0o755) }, nil, true},
		{"link climbing out", func(d string) error {
			return os.Symlink("../../../../../../../../proc/self/environ", d+"/ofsroot.conf")
		}, nil, false},
		{"absolute link inside", func(d string) error {
			if err := os.WriteFile(d+"/real.conf", []byte("MOUNTS='/boot:protect /x:bad'\n"), 0o644); err != nil {
				return err
			}
			return os.Symlink("/etc/ofsroot/real.conf", d+"/ofsroot.conf")
		}, []cmdline.MountRule{{Mount: "/boot", Policy: cmdline.MountProtect}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := root + "/etc/ofsroot"
			os.MkdirAll(dir, 0o755)
			if err := tc.make(dir); err != nil {
				t.Fatal(err)
			}
			b, _ := testBoot(t, "/dev/null", cmdline.Default())
			_, conf := b.mountRules(root)
			if fmt.Sprint(conf) != fmt.Sprint(tc.want) {
				t.Errorf("rules %v, want %v", conf, tc.want)
			}
			if (len(b.status.Warnings) > 0) != tc.warns {
				t.Errorf("warnings %q", b.status.Warnings)
			}
		})
	}
}
