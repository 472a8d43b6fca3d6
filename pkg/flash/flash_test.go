package flash

import (
	"github.com/ofsroot/ofsroot/pkg/mountfs"

	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		head []byte
		want string
	}{
		// The names as users read them ("wrote x: 1 MiB (raw image)").
		{[]byte{0x1f, 0x8b, 8, 0}, "gzip"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, "zstd"},
		{[]byte{0xeb, 0x3c, 0x90}, "raw"},
		{nil, "raw"},
		{[]byte{0xfd, '7', 'z'}, "raw"},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("Sniff(% x) = %s, want %s", tc.head, got, tc.want)
		}
	}
}

func TestProgress(t *testing.T) {
	now := time.Unix(1000, 0)
	var out bytes.Buffer
	p := &Progress{W: &out, Now: func() time.Time { return now }}
	p.Start("writing /dev/sdz", 100<<20)
	for i := 0; i < 100; i++ {
		now = now.Add(100 * time.Millisecond)
		p.Write(make([]byte, 1<<20))
		if i == 24 {
			if got := p.Line(now); got != "writing /dev/sdz:  25% 25.0 MiB of 100.0 MiB, 10.0 MiB/s, 0:08 left" {
				t.Errorf("line at 25%%: %q", got)
			}
		}
	}
	p.Done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 || lines[0] != "writing /dev/sdz: 100.0 MiB" || !strings.Contains(lines[10], "100% 100.0 MiB of 100.0 MiB, 10.0 MiB/s, 0:10") {
		t.Errorf("plain lines (%d):\n%s", len(lines), out.String())
	}

	out.Reset()
	p = &Progress{W: &out, Terminal: true, Now: func() time.Time { return now }}
	p.Start("verifying", 4<<20)
	now = now.Add(time.Second)
	p.Write(make([]byte, 1<<20))
	if got := out.String(); !strings.HasPrefix(got, "\rverifying [#######                       ]  25% 1.0 MiB of 4.0 MiB, 1.0 MiB/s, 0:03 left") {
		t.Errorf("terminal bar: %q", got)
	}
	var nilP *Progress
	nilP.Start("x", 1)
	nilP.Write([]byte{1})
	nilP.Done()

	for s, want := range map[float64]string{0: "0:00", 59.6: "1:00", 3725: "1:02:05"} {
		if got := Duration(s); got != want {
			t.Errorf("Duration(%v) = %q, want %q", s, got, want)
		}
	}
}

// fakeSystem builds /sys and /proc trees: disk sdb (8:16) with sdb1 and
// sdb2, disk sda (8:0) with sda1, dm-0 (253:0) over sda1 holding /, and
// the given mountinfo and swaps.
func fakeSystem(t *testing.T, mountinfo, swaps string) System {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "sys")
	write := func(p, s string) {
		p = filepath.Join(sys, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disk := func(name, dev string, parts ...string) { // parts: name, dev, name, dev...
		base := "devices/pci/block/" + name
		write(base+"/dev", dev)
		write(base+"/size", "1048576")
		write(base+"/ro", "0")
		write(base+"/device/model", "CARD "+name)
		os.MkdirAll(filepath.Join(sys, base, "holders"), 0o755)
		os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
		os.Symlink("../../"+base, filepath.Join(sys, "dev/block", dev))
		for i := 0; i+1 < len(parts); i += 2 {
			p, pdev := parts[i], parts[i+1]
			write(base+"/"+p+"/dev", pdev)
			write(base+"/"+p+"/partition", fmt.Sprint(i/2+1))
			os.MkdirAll(filepath.Join(sys, base, p, "holders"), 0o755)
			os.Symlink("../../"+base+"/"+p, filepath.Join(sys, "dev/block", pdev))
		}
	}
	disk("sda", "8:0", "sda1", "8:1")
	disk("sdb", "8:16", "sdb1", "8:17", "sdb2", "8:18")
	disk("sdc", "8:32")
	write("devices/pci/block/sdc/ro", "1")
	// dm-0 over sda1, holding /.
	write("devices/virtual/block/dm-0/dev", "253:0")
	os.MkdirAll(filepath.Join(sys, "devices/virtual/block/dm-0/slaves"), 0o755)
	os.Symlink("../../../../pci/block/sda/sda1", filepath.Join(sys, "devices/virtual/block/dm-0/slaves/sda1"))
	os.Symlink("../../devices/virtual/block/dm-0", filepath.Join(sys, "dev/block/253:0"))
	os.MkdirAll(filepath.Join(sys, "devices/pci/block/sda/sda1/holders/dm-0"), 0o755)

	proc := filepath.Join(root, "proc")
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	os.WriteFile(filepath.Join(proc, "self/mountinfo"), []byte(mountinfo), 0o644)
	os.WriteFile(filepath.Join(proc, "swaps"), []byte("Filename Type Size Used Priority\n"+swaps), 0o644)
	return System{Proc: proc, Sys: sys}
}

func TestCheckDisk(t *testing.T) {
	const rootOnDM = "20 1 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n21 20 0:5 / /dev rw - devtmpfs udev rw\n"
	for _, tc := range []struct {
		name, mountinfo, swaps, path, dev string
		want                              string // "" = accepted
	}{
		{"free disk", rootOnDM, "", "/dev/sdb", "8:16", ""},
		{"partition", rootOnDM, "", "/dev/sdb1", "8:17", "it is partition 1 of /dev/sdb; an image holds a partition table of its own: give the whole disk, /dev/sdb"},
		{"root through device mapper", rootOnDM, "", "/dev/sda", "8:0", "it holds the running system's / (/dev/mapper/vg-root, ext4)"},
		{"boot", "20 1 0:30 / / rw - overlay overlay rw\n22 20 8:17 / /boot rw - vfat /dev/sdb1 rw\n", "", "/dev/sdb", "8:16", "it holds the running system's /boot (/dev/sdb1, vfat)"},
		{"mounted partition", rootOnDM + "30 20 8:18 / /media/card rw - ext4 /dev/sdb2 rw\n", "", "/dev/sdb", "8:16", "/dev/sdb2 is mounted at /media/card; unmount every partition of it first (umount /dev/sdb2)"},
		{"mounted whole disk", rootOnDM + "30 20 8:16 / /mnt rw - ext4 /dev/sdb rw\n", "", "/dev/sdb", "8:16", "/dev/sdb is mounted at /mnt"},
		{"swap", rootOnDM, "/dev/sdb2 partition 100 0 -2\n", "/dev/sdb", "8:16", "/dev/sdb2 is in use as swap"},
		{"read-only", rootOnDM, "", "/dev/sdc", "8:32", "the device is read-only"},
		{"gone", rootOnDM, "", "/dev/sdx", "8:99", "not in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeSystem(t, tc.mountinfo, tc.swaps)
			d, err := s.CheckDisk(tc.path, tc.dev)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d.Name != "sdb" || d.SizeBytes != 512<<20 || len(d.Partitions) != 2 || d.Model != "CARD sdb" {
					t.Errorf("disk %+v", d)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("err = %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}

// TestCheckTargetFiles: a file or folder is refused unless --to-file.
func TestCheckTargetFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "disk.img")
	os.WriteFile(f, nil, 0o644)
	for _, tc := range []struct {
		path   string
		toFile bool
		want   string
	}{
		{f, false, "it is a regular file, not a block device; pass --to-file"},
		{dir, false, "it is a folder"},
		{dir, true, "neither a block device nor a regular file"},
		{filepath.Join(dir, "missing"), false, "no such file"},
	} {
		_, err := Host.CheckTarget(tc.path, 1, tc.toFile)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckTarget(%s, toFile=%v) = %v, want %q", tc.path, tc.toFile, err, tc.want)
		}
	}
	for _, p := range []string{f, filepath.Join(dir, "new.img")} {
		if tg, err := Host.CheckTarget(p, 1, true); err != nil || tg.IsBlock {
			t.Errorf("CheckTarget(%s, toFile) = %+v, %v", p, tg, err)
		}
	}
}

// compressed writes img compressed with each tool and returns the files.
func compressed(t *testing.T, img string) map[string]string {
	t.Helper()
	out := map[string]string{Raw: img}
	for c, cmd := range map[string][]string{Gzip: {"gzip", "-c"}, XZ: {"xz", "-c", "-T1"}, Zstd: {"zstd", "-q", "-c"}} {
		ext := map[string]string{Gzip: ".gz", XZ: ".xz", Zstd: ".zst"}[c]
		data, err := exec.Command(cmd[0], append(cmd[1:], img)...).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd[0], err)
		}
		p := img + ext
		os.WriteFile(p, data, 0o644)
		out[c] = p
	}
	return out
}

func testImage(t *testing.T, size int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	b := make([]byte, size)
	rand.Read(b[:size/2]) // half random, half zeros, as images are
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFlashToFile(t *testing.T) {
	mountfstest.NeedTools(t, "gzip", "xz", "zstd")
	img := testImage(t, 3<<20+512)
	want, _ := os.ReadFile(img)
	for c, src := range compressed(t, img) {
		t.Run(c, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out.img")
			os.WriteFile(dst, bytes.Repeat([]byte{0xaa}, 8<<20), 0o644) // longer: truncated
			var log bytes.Buffer
			res, err := Flash(Options{Image: src, Target: dst, ToFile: true, Progress: &Progress{W: &log}})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if !bytes.Equal(got, want) || res.Compression != c || res.Bytes != int64(len(want)) || res.SHA256 != sum(want) || res.ReadBack != sum(want) {
				t.Errorf("result %+v; file %d bytes, want %d", res, len(got), len(want))
			}
			if !strings.Contains(log.String(), "verifying "+dst) {
				t.Errorf("progress:\n%s", log.String())
			}
		})
	}
	// A damaged compressed image is refused before the target is touched.
	gz, _ := os.ReadFile(img + ".gz")
	bad := filepath.Join(t.TempDir(), "cut.img.gz")
	os.WriteFile(bad, gz[:len(gz)/2], 0o644)
	dst := filepath.Join(t.TempDir(), "untouched")
	if _, err := Flash(Options{Image: bad, Target: dst, ToFile: true}); err == nil || !strings.Contains(err.Error(), "damaged or cut short") {
		t.Errorf("cut image: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a cut image created the target")
	}
	// The image onto itself: refused, not truncated.
	if _, err := Flash(Options{Image: img, Target: img, ToFile: true}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "it is the image itself") {
		t.Errorf("image onto itself: %v", err)
	}
	if got, _ := os.ReadFile(img); !bytes.Equal(got, want) {
		t.Error("flashing the image onto itself changed it")
	}
	// Saying no writes nothing.
	os.WriteFile(dst, []byte("keep"), 0o644)
	_, err := Flash(Options{Image: img, Target: dst, ToFile: true, Confirm: func(string) bool { return false }})
	if got, _ := os.ReadFile(dst); !errors.Is(err, ErrNotConfirmed) || string(got) != "keep" {
		t.Errorf("not confirmed: %v, file %q", err, got)
	}
}

// sum is the SHA-256 of b, worked out apart from the code under test.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// headSum hashes at most the first 16 MiB of a file or device: enough
// for the test's loop devices, and never a whole host disk in memory.
func headSum(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 16<<20)); err != nil {
		return err.Error()
	}
	return hex.EncodeToString(h.Sum(nil))
}

func losetup(t *testing.T, file string, args ...string) string {
	t.Helper()
	return testenv.Loop(t, file, args...)
}

func backing(t *testing.T, size int64) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "backing")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, size); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFlashLoop flashes each compression onto a loop device and tries
// every refusal on real devices.
func TestFlashLoop(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "losetup", "gzip", "xz", "zstd", "mkfs.ext4", "sfdisk", "mount", "partx")
	img := testImage(t, 4<<20)
	want, _ := os.ReadFile(img)
	dev := losetup(t, backing(t, 8<<20))
	for c, src := range compressed(t, img) {
		res, err := Flash(Options{Image: src, Target: dev})
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		got := make([]byte, len(want))
		f, _ := os.Open(dev)
		f.ReadAt(got, 0)
		f.Close()
		if !bytes.Equal(got, want) || res.SHA256 != sum(want) || res.ReadBack != sum(want) || !res.Target.IsBlock {
			t.Errorf("%s: device content differs or result %+v", c, res)
		}
	}

	// A refusal must come before anything is written: Confirm is asked
	// after every check passed and before the target is opened, so a
	// refusal that did not happen shows as Confirm being asked (and
	// answering no keeps the target safe even then, the host's root
	// disk included).
	refused := func(name, target, want string, o Options) {
		t.Helper()
		o.Target = target
		if o.Image == "" {
			o.Image = img
		}
		asked := false
		o.Confirm = func(string) bool { asked = true; return false }
		before := headSum(target)
		_, err := Flash(o)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a refusal saying %q", name, err, want)
		}
		if asked {
			t.Errorf("%s: every check passed and Confirm was asked", name)
		}
		if after := headSum(target); before != after {
			t.Errorf("%s: the target changed", name)
		}
	}

	small := losetup(t, backing(t, 2<<20))
	refused("too small", small, "the device holds 2097152 bytes (2.0 MiB), the image is 4194304 bytes", Options{})

	// A mounted device: an ext4 on a loop device, mounted.
	mdev := losetup(t, backing(t, 16<<20))
	if o, err := exec.Command("mkfs.ext4", "-q", mdev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, o)
	}
	mnt := t.TempDir()
	if o, err := exec.Command("mount", mdev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, o)
	}
	refused("mounted", mdev, "/dev/"+filepath.Base(mdev)+" is mounted at "+mnt, Options{})
	exec.Command("umount", mnt).Run()

	// A disk whose partition is mounted, and the partition itself.
	pf := backing(t, 16<<20)
	sf := exec.Command("sfdisk", "-q", pf)
	sf.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if o, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, o)
	}
	pdev := losetup(t, pf, "--partscan")
	part := pdev + "p1"
	if _, err := os.Stat(part); err != nil {
		// Some kernels skip the scan; partx adds the partitions (BLKPG)
		// and devtmpfs makes the node.
		if o, err := exec.Command("partx", "-a", pdev).CombinedOutput(); err != nil {
			t.Fatalf("partx -a %s: %v %s", pdev, err, o)
		}
	}
	if o, err := exec.Command("mkfs.ext4", "-q", part).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v %s", part, err, o)
	}
	if o, err := exec.Command("mount", part, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, o)
	}
	refused("mounted partition", pdev, "/dev/"+filepath.Base(part)+" is mounted at "+mnt, Options{})
	exec.Command("umount", mnt).Run()
	refused("partition", part, "it is partition 1 of "+pdev, Options{})

	// The host's root disk.
	if rootDisk := hostRootDisk(t); rootDisk != "" {
		t.Logf("the host's root disk is %s", rootDisk)
		refused("root disk", rootDisk, "it holds the running system's /", Options{})
	}
	// A regular file without --to-file.
	f := backing(t, 8<<20)
	refused("regular file", f, "pass --to-file", Options{})
}

// hostRootDisk is the whole disk under /, or "" (with a log line) when /
// is not on a block device.
func hostRootDisk(t *testing.T) string {
	data, _ := os.ReadFile("/proc/thread-self/mountinfo")
	ms, _ := mountfs.ParseMountinfo(bytes.NewReader(data))
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == "/" {
			disks := Host.wholeDisks(ms[i].MajorMinor, 0)
			if len(disks) == 0 {
				t.Logf("/ (%s on %s) is not on a block device: root-disk refusal not tried on the host", ms[i].FSType, ms[i].MajorMinor)
				return ""
			}
			dir, err := Host.blockDir(disks[0])
			if err != nil {
				return ""
			}
			return "/dev/" + filepath.Base(dir)
		}
	}
	return ""
}

// TestFlashCatchesBadReadBack flashes a loop device whose backing file
// is changed between the write and the read-back, as a failing or fake
// card loses what it was given: Flash must say so (ErrVerify). It also
// shows that the read-back comes from the device and not from the
// page cache the write left behind, which still holds the image.
func TestFlashCatchesBadReadBack(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "losetup")
	img := testImage(t, 1<<20)
	want, _ := os.ReadFile(img)
	file := backing(t, 2<<20)
	dev := losetup(t, file)
	// Something else holding the device open (a desktop's disk monitor)
	// keeps its page cache alive past Flash's close: only dropping the
	// cache makes the read-back come from the device.
	holder, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	afterWrite = func(target string) {
		if target != dev {
			t.Errorf("afterWrite(%s), want %s", target, dev)
		}
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteAt([]byte("lost"), 300<<10) // what the card did not keep
	}
	defer func() { afterWrite = nil }()
	res, err := Flash(Options{Image: img, Target: dev})
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), dev+" reads back sha256 ") || !strings.Contains(err.Error(), "the card or disk may be failing or fake") {
		t.Fatalf("Flash with a bad read-back: %v, want ErrVerify naming %s", err, dev)
	}
	if res == nil || res.SHA256 != sum(want) || res.ReadBack == res.SHA256 {
		t.Errorf("result %+v: want the image's sum %s and another read-back", res, sum(want))
	}

	// The same device read back intact: no error.
	afterWrite = nil
	if res, err := Flash(Options{Image: img, Target: dev}); err != nil || res.ReadBack != sum(want) {
		t.Errorf("intact read-back: %v, %+v", err, res)
	}
}
