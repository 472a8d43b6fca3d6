package tests

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// The per-mount policy (ofs-mounts=, MOUNTS= in ofsroot.conf) and the
// migration aliases (overlayroot=, systemd.volatile=) in QEMU. The root
// is the lab's probe root with three more fstab lines for partitions of
// a second disk (kept across the boots of a test), busybox for the
// `mount -a` a busybox init does, and an ofsroot.conf asking /var/log
// read-only:
//
//	LABEL=ofs-boot      /boot    protected by ofs-mounts=/boot:protect
//	LABEL=ofsroot-data  /data    kept (the default)
//	LABEL=ofs-log       /var/log ro   (from ofsroot.conf)

var mountsFstab = []string{
	"# /etc/fstab of the per-mount policy test root",
	"UUID=" + bootlab.RootUUID + " / ext4 defaults,errors=remount-ro 0 1",
	"tmpfs /tmp tmpfs defaults,nosuid,size=10% 0 0",
	"LABEL=ofs-boot /boot ext4 defaults 0 2",
	"LABEL=ofsroot-data /data ext4 defaults,nofail 0 2",
	"LABEL=ofs-log /var/log ext4 defaults 0 2",
}

const mountsConf = "# ofsroot.conf of the per-mount policy test root\nBOARD=\"\"\nMOUNTS=\"/var/log:ro\"\n"

// mountsImages makes the test root (a copy of the board's default root,
// or of img when given, edited) and the data disk with partitions boot,
// data and log.
func mountsImages(t *testing.T, l *lab, dir, img string) (root, disk string, parts []bootlab.DiskLayout) {
	t.Helper()
	s := l.setup
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := bootlab.FetchBusybox(cache, s.Board)
	if err != nil {
		t.Fatal(err)
	}
	if img == "" {
		img, _ = s.DefaultRoot()
	}
	var offset int64
	if img == s.DiskImage {
		offset = s.Layout.StartBytes
	}
	root = filepath.Join(dir, "root-"+filepath.Base(img))
	if err := bootlab.CopySparse(img, root); err != nil {
		t.Fatal(err)
	}
	err = bootlab.Edit(root, offset, func(d string) error {
		for _, sub := range []string{"boot", "var/log", "etc/ofsroot", "bin"} {
			if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(d, "etc/fstab"), []byte(strings.Join(mountsFstab, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "etc/ofsroot/ofsroot.conf"), []byte(mountsConf), 0o644); err != nil {
			return err
		}
		b, err := os.ReadFile(busybox)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(d, "bin/busybox"), b, 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	var fss []bootlab.Ext4
	for i, label := range []string{"ofs-boot", "ofsroot-data", "ofs-log"} {
		src := filepath.Join(dir, label)
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "original"), []byte(label+"\n"), 0o644)
		if label == "ofs-log" {
			// What systemd-tmpfiles would create in /var/log: a
			// read-only /var/log ships them.
			for _, f := range []string{"wtmp", "btmp", "lastlog"} {
				os.WriteFile(filepath.Join(src, f), nil, 0o664)
			}
		}
		fss = append(fss, bootlab.Ext4{Dir: src, SizeBytes: 8 << 20, Label: label, UUID: fmt.Sprintf("0da7a000-0000-4000-8000-00000000000%d", i+1)})
	}
	disk = filepath.Join(dir, "data-disk.img")
	parts, err = bootlab.MakeDataDisk(fss, disk)
	if err != nil {
		t.Fatal(err)
	}
	return root, disk, parts
}

// partHash is the SHA-256 of one partition's bytes in a disk image.
func partHash(t *testing.T, disk string, p bootlab.DiskLayout) string {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, p.StartBytes, p.SizeBytes)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// pathValue is the probe's value of key (path.write, path.mount,
// path.has) for path, without the path.
func pathValue(t *testing.T, r *bootlab.Run, key, path string) string {
	t.Helper()
	for _, v := range r.Report.Values[key] {
		if p, rest, _ := strings.Cut(v, " "); p == path {
			return rest
		}
	}
	t.Errorf("the probe reported no %s for %s: %q", key, path, r.Report.Values[key])
	return ""
}

func statusMounts(t *testing.T, r *bootlab.Run) map[string]bootstatus.Mount {
	t.Helper()
	if r.Report.Status == nil {
		t.Fatalf("no status: %s", r.Report.StatusError)
	}
	m := map[string]bootstatus.Mount{}
	for _, x := range r.Report.Status.Mounts {
		m[x.Mount] = x
	}
	return m
}

func assertMount(t *testing.T, got map[string]bootstatus.Mount, mount, result, from string) {
	t.Helper()
	if m := got[mount]; m.Result != result || m.From != from {
		t.Errorf("status of %s: %+v, want %s from %s", mount, m, result, from)
	}
}

// mountsBoot boots the policy root with the data disk attached.
func mountsBoot(t *testing.T, l *lab, root, disk, name string, words ...string) *bootlab.Run {
	t.Helper()
	initrd, _ := l.initrd(t, variant{})
	words = append([]string{"root=UUID=" + bootlab.RootUUID}, words...)
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrd, Image: root, Append: words, ExtraDisks: []string{disk},
		Dir: filepath.Join(runDir, "boots", strings.ReplaceAll(t.Name(), "/", "_")+"-"+name)})
	if run.ReportErr != nil {
		t.Fatalf("boot %s: probe report: %v", name, run.ReportErr)
	}
	for _, p := range run.Report.Problems {
		t.Errorf("boot %s: probe: %s", name, p)
	}
	assertNot(t, run.Console, "the init panicked", "a panic recovered in the init")
	if !run.ImageUnchanged() {
		t.Errorf("boot %s: the root image was written", name)
	}
	return run
}

// checkPolicy checks a boot that protected /boot, kept /data and made
// /var/log read-only, after busybox's mount -a, from inside.
func checkPolicy(t *testing.T, r *bootlab.Run, bootFrom string) {
	t.Helper()
	if got := pathValue(t, r, "path.write", "/data"); got != "ok" {
		t.Errorf("/data (kept): write %s", got)
	}
	if got := pathValue(t, r, "path.mount", "/data"); !strings.HasPrefix(got, "ext4 ") || !strings.HasSuffix(got, " rw") && !strings.Contains(got, " rw,") {
		t.Errorf("/data (kept) mounted as %q", got)
	}
	if got := pathValue(t, r, "path.write", "/boot"); got != "ok" {
		t.Errorf("/boot (protected): write %s", got)
	}
	if got := pathValue(t, r, "path.mount", "/boot"); !strings.HasPrefix(got, "overlay ofsroot-boot ") {
		t.Errorf("/boot (protected) mounted as %q", got)
	}
	if got := pathValue(t, r, "path.write", "/var/log"); got != "EROFS" {
		t.Errorf("/var/log (ro): write %s, want EROFS", got)
	}
	got := statusMounts(t, r)
	assertMount(t, got, "/boot", "protected", bootFrom)
	assertMount(t, got, "/data", "kept", "default")
	assertMount(t, got, "/var/log", "read-only", "ofsroot.conf")
	if m := got["/boot"]; m.Device == "" || m.Lower != "/run/ofsroot/mounts/boot" {
		t.Errorf("status of /boot: %+v", m)
	}
	for _, s := range []string{"# ofsroot: /boot is protected (protect from " + bootFrom + ")", "\n# LABEL=ofs-boot /boot ext4 defaults 0 2\n",
		"\nLABEL=ofs-log /var/log ext4 ro 0 0\n", "\nLABEL=ofsroot-data /data ext4 defaults,nofail 0 2\n"} {
		if !strings.Contains(r.Report.Fstab, s) {
			t.Errorf("rewritten fstab lacks %q:\n%s", s, r.Report.Fstab)
		}
	}
	assertHas(t, r.Console, "ofsroot: mount /boot: protected")
}

// TestMountPolicyBoots: four boots of qemu-x86_64 on one data disk.
//
//	A  overlayfs=yes ofs-mounts=/boot:protect: /data written for good,
//	   /boot written in RAM, /var/log EROFS
//	B  systemd.volatile=overlay ofs-mounts=/boot:protect: A's /data file
//	   is there, A's /boot file is not; /boot's bytes never changed
//	C  overlayroot=tmpfs: every block mount protected (overlayroot's
//	   recurse) but /var/log, ro by ofsroot.conf; /data's bytes do not
//	   change this time, /boot's never did
//	D  overlayroot=disabled ofs-mounts=/boot:protect: plain boot, the
//	   policy ignored, said so
func TestMountPolicyBoots(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-x86_64")
	root, disk, parts := mountsImages(t, l, filepath.Join(runDir, "mounts-x86"), "")
	bootHash, dataHash, logHash := partHash(t, disk, parts[0]), partHash(t, disk, parts[1]), partHash(t, disk, parts[2])
	mountA := []string{"probe.run=/bin/busybox,mount,-a"}

	a := mountsBoot(t, l, root, disk, "A", append(mountA, "overlayfs=yes", "ofs-mounts=/boot:protect",
		"probe.write=/data", "probe.write=/boot", "probe.write=/var/log")...)
	checkPolicy(t, a, "ofs-mounts=")
	if partHash(t, disk, parts[1]) == dataHash {
		t.Errorf("/data (kept) was written but its partition did not change: the hash check cannot fail")
	}
	if partHash(t, disk, parts[2]) != logHash {
		t.Errorf("/var/log (ro): its partition changed")
	}

	b := mountsBoot(t, l, root, disk, "B", append(mountA, "systemd.volatile=overlay", "ofs-mounts=/boot:protect",
		"probe.has=/data/probe-wrote-this", "probe.has=/boot/probe-wrote-this", "probe.has=/boot/original", "probe.write=/boot")...)
	if got := pathValue(t, b, "path.has", "/data/probe-wrote-this"); got != "present" {
		t.Errorf("/data (kept): boot A's file is %s in boot B", got)
	}
	if got := pathValue(t, b, "path.has", "/boot/probe-wrote-this"); got != "absent" {
		t.Errorf("/boot (protected): boot A's file is %s in boot B", got)
	}
	if got := pathValue(t, b, "path.has", "/boot/original"); got != "present" {
		t.Errorf("/boot (protected): its own file is %s", got)
	}
	assertLine(t, b.Console, "ofsroot: systemd.volatile=overlay (a word of another overlay-root tool) becomes: overlayfs=yes")
	if st := b.Report.Status; st == nil || st.Mode != bootstatus.Protected || st.Alias == nil || st.Alias.Word != "systemd.volatile=overlay" || st.Requested != "systemd.volatile=overlay" {
		t.Errorf("boot B status: %+v", st)
	}
	assertMount(t, statusMounts(t, b), "/boot", "protected", "ofs-mounts=")
	assertMount(t, statusMounts(t, b), "/data", "kept", "default")
	if partHash(t, disk, parts[0]) != bootHash {
		t.Errorf("/boot (protected in boots A and B): its partition changed")
	}
	dataHash = partHash(t, disk, parts[1]) // B mounted /data read-write again

	c := mountsBoot(t, l, root, disk, "C", append(mountA, "overlayroot=tmpfs", "probe.write=/data", "probe.write=/var/log")...)
	assertLine(t, c.Console, "ofsroot: overlayroot=tmpfs (a word of another overlay-root tool) becomes: overlayfs=yes with every other fstab mount of a block device protected but vfat")
	got := statusMounts(t, c)
	assertMount(t, got, "/data", "protected", "overlayroot=tmpfs")
	assertMount(t, got, "/boot", "protected", "overlayroot=tmpfs")
	assertMount(t, got, "/var/log", "read-only", "ofsroot.conf")
	assertMount(t, got, "/tmp", "kept", "default")
	if w := pathValue(t, c, "path.write", "/data"); w != "ok" {
		t.Errorf("/data (protected by overlayroot=tmpfs): write %s", w)
	}
	if m := pathValue(t, c, "path.mount", "/data"); !strings.HasPrefix(m, "overlay ") {
		t.Errorf("/data (protected by overlayroot=tmpfs) mounted as %q", m)
	}
	if partHash(t, disk, parts[1]) != dataHash {
		t.Errorf("/data (protected by overlayroot=tmpfs): its partition changed")
	}
	if partHash(t, disk, parts[0]) != bootHash {
		t.Errorf("/boot (protected in boots A, B and C): its partition changed")
	}

	d := mountsBoot(t, l, root, disk, "D", "overlayroot=disabled", "ofs-mounts=/boot:protect")
	assertLine(t, d.Console, "ofsroot: overlayroot=disabled (a word of another overlay-root tool) becomes: overlayfs=no")
	assertLine(t, d.Console, "per-mount policy (ofs-mounts=) ignored: overlayfs=no")
	if st := d.Report.Status; st == nil || st.Mode != bootstatus.Plain || len(st.Mounts) != 0 {
		t.Errorf("boot D status: %+v", st)
	}
}

// TestMountPolicyARM: one boot of qemu-arm-virt with
// overlayroot=tmpfs:recurse=0 (root only) and ofs-mounts=/boot:protect.
func TestMountPolicyARM(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-arm-virt")
	root, disk, parts := mountsImages(t, l, filepath.Join(runDir, "mounts-arm"), "")
	bootHash, dataHash := partHash(t, disk, parts[0]), partHash(t, disk, parts[1])
	r := mountsBoot(t, l, root, disk, "recurse0", "probe.run=/bin/busybox,mount,-a", "overlayroot=tmpfs:recurse=0", "ofs-mounts=/boot:protect",
		"probe.write=/data", "probe.write=/boot", "probe.write=/var/log")
	checkPolicy(t, r, "ofs-mounts=")
	assertLine(t, r.Console, "ofsroot: overlayroot=tmpfs:recurse=0 (a word of another overlay-root tool) becomes: overlayfs=yes (root only")
	if st := r.Report.Status; st == nil || st.Mode != bootstatus.Protected {
		t.Errorf("status: %+v", st)
	}
	if partHash(t, disk, parts[0]) != bootHash {
		t.Errorf("/boot (protected): its partition changed")
	}
	if partHash(t, disk, parts[1]) == dataHash {
		t.Errorf("/data (kept) was written but its partition did not change")
	}
}

// TestMountPolicySystemd: the systemd root (x86; with udev, which makes
// the device units systemd waits for before it mounts) with the same fstab and
// ofsroot.conf, booted with systemd.volatile=overlay and
// ofs-mounts=/boot:protect: systemd's fstab generator mounts /data
// writable and /var/log read-only from the rewritten fstab and leaves the
// init's /boot overlay alone, no unit fails, and /boot's bytes are
// unchanged.
func TestMountPolicySystemd(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-x86_64")
	img, err := l.setup.SystemdImage()
	if err != nil {
		t.Fatalf("systemd root with udev: %v (the test needs Debian's mirror once; the debootstrap is cached)", err)
	}
	root, disk, parts := mountsImages(t, l, filepath.Join(runDir, "mounts-systemd"), img)
	bootHash, dataHash := partHash(t, disk, parts[0]), partHash(t, disk, parts[1])
	r := mountsBoot(t, l, root, disk, "systemd", "systemd.volatile=overlay", "ofs-mounts=/boot:protect",
		"probe.write=/data", "probe.write=/boot", "probe.write=/var/log")
	assertSystemdUp(t, r)
	checkPolicy(t, r, "ofs-mounts=")
	assertLine(t, r.Console, "ofsroot: systemd.volatile=overlay (a word of another overlay-root tool) becomes: overlayfs=yes")
	if partHash(t, disk, parts[0]) != bootHash {
		t.Errorf("/boot (protected): its partition changed")
	}
	if partHash(t, disk, parts[1]) == dataHash {
		t.Errorf("/data (kept) was written but its partition did not change")
	}
}
