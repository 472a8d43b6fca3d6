package tests

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// byPath are the /dev/disk/by-path names of the root partition on the
// MBR disk, as udev would make them. QEMU's PC puts the virtio disk in
// PCI slot 3 (with -net none); the i.MX6Q's usdhc4 is the platform device
// 219c000.mmc. The probe's "block" lines show the sysfs paths they come
// from; checkByPath fails with them if QEMU ever moves things.
var byPath = map[string]string{
	"qemu-x86_64": "/dev/disk/by-path/pci-0000:00:03.0-part1",
	"sabrelite":   "/dev/disk/by-path/platform-219c000.mmc-part1",
}

var byPathSysfs = map[string]string{
	"qemu-x86_64": "/0000:00:03.0/",
	"sabrelite":   "/219c000.mmc/",
}

const pageSize = 4096

// TestRootImages checks the images every boot starts from.
func TestRootImages(t *testing.T) {
	t.Parallel()
	for _, name := range board.Emulated() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := getLab(t, name).setup
			if err := bootlab.Fsck(s.FSImage, 0); err != nil {
				t.Error(err)
			}
			if err := bootlab.Fsck(s.DiskImage, s.Layout.StartBytes); err != nil {
				t.Error(err)
			}
			pt, err := bootlab.ReadPartitionTable(s.DiskImage)
			if err != nil {
				t.Fatal(err)
			}
			if pt.PartitionTable.ID != "0x"+bootlab.DiskID || len(pt.PartitionTable.Partitions) != bootlab.RootPartition {
				t.Errorf("partition table %+v", pt.PartitionTable)
			}
			if s.Board.QEMU.DiskSizePowerOfTwo && s.Layout.SizeBytes&(s.Layout.SizeBytes-1) != 0 {
				t.Errorf("%s needs a power-of-two disk, got %d bytes", name, s.Layout.SizeBytes)
			}
		})
	}
}

// TestProtected boots every board with the overlay on and 20% of RAM for
// it: the full promise of ofsroot.
func TestProtected(t *testing.T) {
	t.Parallel()
	for _, name := range board.Emulated() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run := boot(t, bootCase{board: name, words: []string{"overlayfs=yes", "ofs-size=20"}})
			assertProtected(t, run, defaultDevice(t, name), 20)
			assertImageUnchanged(t, run)
		})
	}
}

// TestPlain boots every board without the overlay, read-only: the real
// root is / and cannot be written. On the ARM boards overlayfs= is left
// out, which must mean no.
func TestPlain(t *testing.T) {
	t.Parallel()
	for _, name := range board.Emulated() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			words := []string{"ro"}
			if name == "qemu-x86_64" {
				words = []string{"overlayfs=no", "ro"}
			}
			run := boot(t, bootCase{board: name, words: words})
			assertPlain(t, run, defaultDevice(t, name), false)
			assertImageUnchanged(t, run)
		})
	}
}

// TestPlainReadWrite: overlayfs=no rw boots the real root read-write (and
// so may change the image).
func TestPlainReadWrite(t *testing.T) {
	t.Parallel()
	run := boot(t, bootCase{board: "qemu-x86_64", words: []string{"overlayfs=no", "rw"}})
	assertPlain(t, run, "/dev/vda", true)
}

// TestRootSpec names the root partition every way root= allows, on the
// MBR disk (so that the partition, /dev/vda1, differs from the disk).
func TestRootSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, board, root string
		overlay           bool
	}{
		// No overlayfs= word: a plain boot.
		{"UUID", "qemu-x86_64", "UUID=" + bootlab.RootUUID, false},
		{"LABEL", "qemu-x86_64", "LABEL=" + bootlab.RootLabel, true},
		{"PARTUUID", "qemu-x86_64", "PARTUUID=" + bootlab.DiskID + "-01", true},
		{"by-path", "qemu-x86_64", byPath["qemu-x86_64"], true},
		{"by-path-sabrelite", "sabrelite", byPath["sabrelite"], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var words []string
			if tc.overlay {
				words = []string{"overlayfs=yes", "ofs-size=20"}
			}
			run := boot(t, bootCase{board: tc.board, image: diskImage, root: tc.root, words: words})
			b, _ := board.Lookup(tc.board)
			dev := b.QEMU.PartitionDevice(bootlab.RootPartition)
			if strings.HasPrefix(tc.root, "/dev/disk/by-path/") && run.Report != nil {
				checkByPath(t, run.Report, tc.board, dev)
			}
			if tc.overlay {
				assertProtected(t, run, dev, 20)
			} else {
				assertPlain(t, run, dev, false)
			}
			if st := run.Report.Status; st != nil {
				if st.Root.Spec != tc.root {
					t.Errorf("status root.spec = %q, want %q", st.Root.Spec, tc.root)
				}
				if st.Root.Device != dev {
					t.Errorf("status root.device = %q, want %q", st.Root.Device, dev)
				}
			}
			assertImageUnchanged(t, run)
		})
	}
}

// checkByPath makes sure the by-path name the test uses still matches
// where QEMU puts the disk, so that a failure says why.
func checkByPath(t *testing.T, r *bootlab.Report, boardName, dev string) {
	t.Helper()
	name := strings.TrimPrefix(dev, "/dev/")
	if p := r.Block[name]; !strings.Contains(p, byPathSysfs[boardName]) {
		t.Errorf("%s is at %q in sysfs, not under %q: update byPath for %s", name, p, byPathSysfs[boardName], boardName)
	}
}

// TestBadValues: a bad value never stops the boot; the console names the
// word, the value and the default used instead.
func TestBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		word, value, def string
		// percent is the tmpfs size expected (the default); 0 means no
		// overlay is expected.
		percent int
	}{
		{"ofs-size", "abc", "50%", 50},
		{"ofs-size", "0", "50%", 50},
		{"ofs-size", "250", "50%", 50},
		{"overlayfs", "maybe", "yes (PROTECTED", 50}, // fails closed
	} {
		wv := tc.word + "=" + tc.value
		t.Run(wv, func(t *testing.T) {
			t.Parallel()
			words := []string{wv}
			if tc.word != "overlayfs" {
				words = []string{"overlayfs=yes", wv}
			}
			run := boot(t, bootCase{board: "qemu-x86_64", words: words})
			assertLine(t, run.Console, "ofsroot: warning: ", wv, "; using "+tc.def)
			if tc.percent > 0 {
				assertProtected(t, run, "/dev/vda", tc.percent)
			} else {
				assertPlain(t, run, "/dev/vda", false)
			}
			if st := run.Report.Status; st != nil && !containsAny(st.Warnings, wv) {
				t.Errorf("status warnings %q do not mention %s", st.Warnings, wv)
			}
		})
	}
}

func containsAny(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// TestRootMissing: with no such root device the init says what it looked
// for and what it saw, then reboots (QEMU exits thanks to -no-reboot)
// without a kernel panic.
func TestRootMissing(t *testing.T) {
	t.Parallel()
	spec := "UUID=00000000-0000-0000-0000-000000000000"
	run := boot(t, bootCase{board: "qemu-x86_64", root: spec, words: []string{"ofs-rescue-delay=1"}, noProbe: true})
	c := run.Console
	assertLine(t, c, "ofsroot: error: ", `root device "`+spec+`" not found`)
	assertLine(t, c, "block devices seen: ", "vda")
	// The init prints "ofsroot: error: rescue: rebooting in 1 s (...)".
	assertLine(t, c, "ofsroot: ", "rescue: rebooting in 1 s")
	assertNot(t, c, "switching to /sbin/init", "a hand-over")
	if run.Console.TimedOut {
		t.Error("QEMU had to be killed: the init did not reboot")
	}
	assertImageUnchanged(t, run)
}

// TestDegraded: an initramfs without the overlay module cannot build the
// overlay; the init must fail closed (the real root read-only) and say so.
func TestDegraded(t *testing.T) {
	t.Parallel()
	run := boot(t, bootCase{board: "qemu-x86_64", variant: variant{without: []string{"overlay"}}, words: []string{"overlayfs=yes"}})
	r := run.Report
	assertLine(t, run.Console, "ofsroot: ", "DEGRADED")
	root, ok := r.MountAt("/")
	switch {
	case !ok:
		t.Error("nothing mounted at /")
	case root.FSType == "overlay":
		t.Errorf("/ is an overlay without the overlay module? %+v", root)
	case !root.ReadOnly() || root.Source != "/dev/vda":
		t.Errorf("/ = %s %s %s, want /dev/vda mounted ro (fail closed)", root.Source, root.FSType, root.Options)
	}
	if r.WriteRoot != "EROFS" {
		t.Errorf("writing / gave %q, want EROFS (never rw when degraded)", r.WriteRoot)
	}
	if st := r.Status; st == nil {
		t.Errorf("no status record: %s", r.StatusError)
	} else {
		if st.Mode != bootstatus.Degraded {
			t.Errorf("status mode %q, want %q", st.Mode, bootstatus.Degraded)
		}
		if len(st.Reasons) == 0 {
			t.Error("status has no degraded_reasons")
		}
	}
	assertImageUnchanged(t, run)
}

// TestCompression boots each compression the builder offers, and checks
// the archive really is compressed that way. The gzip boot also passes
// arguments to the real init after "--".
func TestCompression(t *testing.T) {
	t.Parallel()
	magic := map[string][]byte{
		"gzip": {0x1f, 0x8b},
		"xz":   {0xfd, '7', 'z', 'X', 'Z', 0},
		"zstd": {0x28, 0xb5, 0x2f, 0xfd},
	}
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			v := variant{compression: comp}
			l := getLab(t, "qemu-x86_64")
			path, res := l.initrd(t, v)
			head := make([]byte, 8)
			if f, err := os.Open(path); err == nil {
				f.Read(head)
				f.Close()
			}
			if !bytes.HasPrefix(head, magic[comp]) {
				t.Errorf("%s does not start with the %s magic: % x", path, comp, head)
			}
			if res.CompressedBytes <= 0 || res.UncompressedBytes <= res.CompressedBytes {
				t.Errorf("sizes: %d compressed, %d uncompressed", res.CompressedBytes, res.UncompressedBytes)
			}
			words := []string{"ro"}
			if comp == "gzip" {
				words = append(words, "--", "probe-arg-1", "probe-arg-2")
			}
			run := boot(t, bootCase{board: "qemu-x86_64", variant: v, words: words})
			assertPlain(t, run, "/dev/vda", false)
			if comp == "gzip" {
				if got := run.Report.Args; len(got) != 3 || got[1] != "probe-arg-1" || got[2] != "probe-arg-2" {
					t.Errorf("real init got args %q, want [/sbin/init probe-arg-1 probe-arg-2]", got)
				}
			}
		})
	}
}

// defaultDevice is the root device a default boot of the board uses.
func defaultDevice(t *testing.T, name string) string {
	b, err := board.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if b.QEMU.Disk == "virtio-pci" {
		return b.QEMU.DiskDevice
	}
	return b.QEMU.PartitionDevice(bootlab.RootPartition)
}

// assertProtected checks the protected root: / an overlay named
// overlayfs-root, the real root ro at /mnt/root-RO, a tmpfs named
// tmpfs-root of percent% of RAM at /mnt/root-RW, writes landing in RAM
// only, the fstab rewritten, and the status saying protected.
func assertProtected(t *testing.T, run *bootlab.Run, device string, percent int) {
	t.Helper()
	r := run.Report
	assertNot(t, run.Console, "DEGRADED", "a degraded boot")

	if m, ok := r.MountAt("/"); !ok || m.FSType != "overlay" || m.Source != "overlayfs-root" || m.ReadOnly() {
		t.Errorf("/ = %+v, want a rw overlay named overlayfs-root", m)
	}
	if m, ok := r.MountAt("/mnt/root-RO"); !ok || m.FSType != "ext4" || m.Source != device || !m.ReadOnly() {
		t.Errorf("/mnt/root-RO = %+v, want %s (ext4) mounted ro", m, device)
	}
	if m, ok := r.MountAt("/mnt/root-RW"); !ok || m.FSType != "tmpfs" || m.Source != "tmpfs-root" || m.ReadOnly() {
		t.Errorf("/mnt/root-RW = %+v, want a rw tmpfs named tmpfs-root", m)
	}
	if r.RW == nil || r.MemTotal == 0 {
		t.Errorf("no size for /mnt/root-RW (%s) or no MemTotal", r.RWError)
	} else {
		want := r.MemTotal * uint64(percent) / 100
		got := r.RW.Bytes()
		if diff := int64(got) - int64(want); diff < -pageSize || diff > pageSize {
			t.Errorf("/mnt/root-RW holds %d bytes, want %d%% of MemTotal %d = %d (within a page)", got, percent, r.MemTotal, want)
		}
	}

	if r.WriteRoot != "ok" {
		t.Errorf("writing / gave %q, want ok", r.WriteRoot)
	}
	if r.InUpper != "present" {
		t.Errorf("the file written to / is %q in /mnt/root-RW/upper, want present", r.InUpper)
	}
	if r.InLower != "absent" {
		t.Errorf("the file written to / is %q in /mnt/root-RO, want absent", r.InLower)
	}
	if r.WriteRO != "EROFS" {
		t.Errorf("writing under /mnt/root-RO gave %q, want EROFS", r.WriteRO)
	}
	assertFstabRewritten(t, r.Fstab)

	st := r.Status
	if st == nil {
		t.Errorf("no status record: %s", r.StatusError)
		return
	}
	if st.Mode != bootstatus.Protected {
		t.Errorf("status mode %q, want %q (reasons %q)", st.Mode, bootstatus.Protected, st.Reasons)
	}
	if st.Overlay == nil || st.RAM == nil {
		t.Errorf("status lacks overlay or ram: %+v %+v", st.Overlay, st.RAM)
	} else if r.RW != nil {
		if d := int64(st.RAM.SizeBytes) - int64(r.RW.Bytes()); d < -pageSize || d > pageSize {
			t.Errorf("status ram.size_bytes %d, tmpfs is %d", st.RAM.SizeBytes, r.RW.Bytes())
		}
	}
	assertStatusTimes(t, r)
}

// assertFstabRewritten: a header about RAM, the real root and how to
// remount it; no / and no swap lines; a /mnt/root-RO line mounted ro; the
// other lines of the image's fstab kept.
func assertFstabRewritten(t *testing.T, fstab string) {
	t.Helper()
	if fstab == "" {
		t.Error("the new root's /etc/fstab is empty or unreadable")
		return
	}
	var header strings.Builder
	for _, l := range strings.Split(fstab, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" {
			header.WriteString(l + "\n")
			continue
		}
		break
	}
	h := header.String()
	for _, want := range []string{"RAM", "/mnt/root-RO", "remount"} {
		if !strings.Contains(h, want) {
			t.Errorf("fstab header does not mention %q:\n%s", want, h)
		}
	}
	roLine := false
	for _, l := range strings.Split(fstab, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[1] == "/":
			t.Errorf("fstab still mounts /: %q", l)
		case f[2] == "swap":
			t.Errorf("fstab still has swap: %q", l)
		case f[1] == "/mnt/root-RO":
			roLine = true
			if !strings.Contains(","+f[3]+",", ",ro,") {
				t.Errorf("the /mnt/root-RO line is not ro: %q", l)
			}
		}
	}
	if !roLine {
		t.Errorf("fstab has no /mnt/root-RO line:\n%s", fstab)
	}
	for _, l := range bootlab.FstabLines {
		f := strings.Fields(l)
		if l == "" || (len(f) > 2 && (f[1] == "/" || f[2] == "swap")) {
			continue
		}
		if !strings.Contains(fstab, l+"\n") {
			t.Errorf("fstab lost the line %q:\n%s", l, fstab)
		}
	}
}

// assertPlain checks a boot without the overlay: the real device is /,
// ro or rw as asked, nothing at /mnt/root-RW, status mode plain.
func assertPlain(t *testing.T, run *bootlab.Run, device string, rw bool) {
	t.Helper()
	r := run.Report
	assertNot(t, run.Console, "DEGRADED", "a degraded boot")
	m, ok := r.MountAt("/")
	if !ok || m.FSType != "ext4" || m.Source != device {
		t.Errorf("/ = %+v, want %s (ext4)", m, device)
	}
	if m.ReadOnly() == rw {
		t.Errorf("/ mounted %q, want rw=%v", m.Options, rw)
	}
	if m, ok := r.MountAt("/mnt/root-RW"); ok {
		t.Errorf("a plain boot has something at /mnt/root-RW: %+v", m)
	}
	want := "EROFS"
	if rw {
		want = "ok"
	}
	if r.WriteRoot != want {
		t.Errorf("writing / gave %q, want %q", r.WriteRoot, want)
	}
	if !strings.Contains(r.Fstab, bootlab.FstabLines[2]) {
		t.Errorf("a plain boot must leave /etc/fstab alone; got:\n%s", r.Fstab)
	}
	st := r.Status
	if st == nil {
		t.Errorf("no status record: %s", r.StatusError)
		return
	}
	if st.Mode != bootstatus.Plain {
		t.Errorf("status mode %q, want %q", st.Mode, bootstatus.Plain)
	}
	assertStatusTimes(t, r)
}

// assertStatusTimes: the init's start and hand-over times are on the
// same monotonic clock as the probe's, in order, with timed steps.
func assertStatusTimes(t *testing.T, r *bootlab.Report) {
	t.Helper()
	st := r.Status
	if !(st.StartedAt > 0 && st.StartedAt <= st.HandoverAt && st.HandoverAt <= r.T) {
		t.Errorf("times out of order: init started %.3f, handed over %.3f, probe started %.3f", st.StartedAt, st.HandoverAt, r.T)
	}
	if len(st.Steps) == 0 {
		t.Error("status has no steps")
	}
	var sum float64
	for _, s := range st.Steps {
		if s.Seconds < 0 {
			t.Errorf("step %q took %f s", s.Name, s.Seconds)
		}
		sum += s.Seconds
	}
	if sum > st.HandoverAt-st.StartedAt+0.01 {
		t.Errorf("steps add up to %.3f s, more than start to hand-over (%.3f s)", sum, st.HandoverAt-st.StartedAt)
	}
}

func assertImageUnchanged(t *testing.T, run *bootlab.Run) {
	t.Helper()
	if !run.ImageUnchanged() {
		t.Errorf("the root image was written: sha256 %s before, %s after", run.ImageBefore, run.ImageAfter)
	}
}
