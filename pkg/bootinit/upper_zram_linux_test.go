package bootinit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/debcache"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// hostZram hot-adds a zram device of the host's kernel for the test, and
// gives it back at the end. The host's own zram0 is left alone.
func hostZram(t *testing.T) zram.Device {
	t.Helper()
	testenv.NeedRoot(t, "sets up a zram device")
	if _, err := os.Stat("/sys/class/zram-control"); err != nil {
		exec.Command("modprobe", "zram").Run()
	}
	if _, err := os.Stat("/sys/class/zram-control/hot_add"); err != nil {
		testenv.SkipEvenInCI(t, "the host kernel has no zram (no /sys/class/zram-control after modprobe zram); the QEMU boots in tests/ cover the layer")
	}
	d, err := zram.HotAdd("/sys", "/dev")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A filesystem that met write errors lets the device go a
		// moment after its unmount.
		for i := 0; d.Reset() != nil && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if err := d.HotRemove("/sys"); err != nil {
			t.Errorf("hot_remove %s: %v: the device is left on the host", d.Dev, err)
		}
	})
	return d
}

// hostMke2fs is Debian's static busybox for this host (its mke2fs
// applet), from the package cache.
func hostMke2fs(t *testing.T) string {
	t.Helper()
	b, err := board.Lookup("qemu-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := debcache.CacheDir()
	if err == nil {
		var bb string
		if bb, err = debcache.FetchBusybox(cache, b); err == nil {
			return bb
		}
	}
	testenv.SkipUnlessCI(t, "no busybox-static for its mke2fs: %v (set OFSROOT_CACHE)", err)
	return ""
}

// fillRandom writes incompressible 1 MiB chunks to a new file in dir
// until a write fails, and returns the bytes written and that error.
func fillRandom(dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var n int64
	for {
		rand.Read(chunk)
		m, err := f.Write(chunk)
		n += int64(m)
		if err != nil {
			return n, err
		}
		if n > 4<<30 {
			return n, errors.New("4 GiB written and no error")
		}
	}
}

// TestZramCapAloneLosesWrites is the fault the layer's sizes exist for:
// a zram disk larger than its mem_limit, filled with incompressible
// data, does not give ENOSPC: write(2) succeeds, the device's writes fail
// at writeback (failed_writes in io_stat) and the data is lost.
func TestZramCapAloneLosesWrites(t *testing.T) {
	d := hostZram(t)
	mkfs := hostMke2fs(t)
	mountfstest.PrivateNamespace(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.SetMemLimit(2 << 20))
	must(d.SetDisksize(16 << 20))
	old := zramMkfs
	zramMkfs = mkfs
	defer func() { zramMkfs = old }()
	must(mke2fs(d.Dev))
	dir := t.TempDir()
	must(unix.Mount(d.Dev, dir, zramFSType, 0, "discard"))
	defer unix.Unmount(dir, 0)
	f, err := os.Create(filepath.Join(dir, "data"))
	must(err)
	chunk := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 8 && werr == nil; i++ {
		rand.Read(chunk)
		_, werr = f.Write(chunk)
	}
	f.Close()
	unix.Sync()
	st, err := d.Stat()
	must(err)
	failed := failedWrites(t, d)
	t.Logf("8 MiB onto a 16 MiB disk capped at 2 MiB: write error %v; mm_stat %+v; %d failed writes", werr, st.MM, failed)
	if werr != nil || failed == 0 {
		t.Errorf("the cap alone gave %v and %d failed device writes, want write(2) to succeed and the device to fail writes: the fault is gone, Sizes' cut may be needless", werr, failed)
	}
}

// failedWrites is failed_writes of the device's io_stat.
func failedWrites(t *testing.T, d zram.Device) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.Sys, "io_stat"))
	f := strings.Fields(string(data))
	if err != nil || len(f) < 2 {
		t.Fatalf("io_stat %q: %v", data, err)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestZramLayerForReal builds the protected root with a zram layer on a
// zram device of the host's kernel: the layer is an ext4 mount of the
// device, writes land in it, filling / with incompressible data ends in
// ENOSPC with the device's RAM under its cap, and the real root is not
// written. Then an unknown compressor (the default, with a warning), and
// a missing mke2fs (the tmpfs layer, with the reason).
func TestZramLayerForReal(t *testing.T) {
	d := hostZram(t)
	mkfs := hostMke2fs(t)
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	before := sha(t, img)

	oldDev, oldMkfs, oldMeminfo := zramDevice, zramMkfs, MeminfoFile
	t.Cleanup(func() { zramDevice, zramMkfs, MeminfoFile = oldDev, oldMkfs, oldMeminfo })
	zramDevice, zramMkfs = &d, mkfs
	// MemAvailable such that the RAM cap is 96 MiB: the reserve (10% of
	// MemTotal, at least 8 MiB) plus that.
	mem, err := memTotal()
	if err != nil {
		t.Fatal(err)
	}
	reserve := max(uint64(cmdline.DefaultReserveBytes), mem*cmdline.DefaultReservePercent/100)
	const capBytes = 96 << 20
	fake := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(fake, []byte(fmt.Sprintf("MemTotal: %d kB\nMemAvailable: %d kB\n", mem/1024, (reserve+capBytes)/1024)), 0o644)
	MeminfoFile = fake

	build := func(word, size string) *boot {
		t.Helper()
		cfg, warns := cmdline.Parse("overlayfs=yes ofs-upper=" + word + " ofs-size=" + size)
		if len(warns) > 0 {
			t.Fatal(warns)
		}
		cfg.Root = "LABEL=testroot"
		b, _ := testBoot(t, loop, cfg)
		if err := b.x.Run(b.mountRealRoot(b.paths.ro, true)); err != nil {
			t.Fatal(err)
		}
		if err := b.x.Run(b.overlaySteps()...); err != nil {
			t.Fatal(err)
		}
		if b.status.Mode != bootstatus.Protected || b.status.Upper == nil {
			t.Fatalf("mode %q upper %+v", b.status.Mode, b.status.Upper)
		}
		return b
	}
	teardown := func(b *boot) {
		t.Helper()
		for _, m := range []string{b.paths.newRoot, b.paths.rw, b.paths.ro} {
			if err := unix.Unmount(m, 0); err != nil {
				t.Fatalf("umount %s: %v", m, err)
			}
		}
		if err := d.Reset(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("lz4 filled", func(t *testing.T) {
		b := build("zram:lz4", "1G")
		u := b.status.Upper
		if u.Kind != bootstatus.UpperZram || u.Device != d.Dev || u.FSType != "ext4" || u.Zram == nil || u.Zram.Algorithm != "lz4" || u.Fallback != "" {
			t.Fatalf("upper %+v zram %+v", u, u.Zram)
		}
		if u.Zram.MemLimitBytes != capBytes || u.Zram.DisksizeBytes != capBytes-capBytes/zram.Margin {
			t.Errorf("disksize %d mem_limit %d, want %d and %d (ofs-size=1G cut to the cap)", u.Zram.DisksizeBytes, u.Zram.MemLimitBytes, capBytes-capBytes/zram.Margin, capBytes)
		}
		if b.status.RAM != nil {
			t.Errorf("status ram %+v for a zram layer", b.status.RAM)
		}
		var st unix.Statfs_t
		unix.Statfs(b.paths.rw, &st)
		if st.Type != unix.EXT4_SUPER_MAGIC {
			t.Errorf("layer's filesystem type %#x, want ext4's", st.Type)
		}
		if err := os.WriteFile(b.paths.newRoot+"/hello", []byte("hi"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(b.paths.rw + "/upper/hello"); err != nil {
			t.Errorf("write not in the zram layer: %v", err)
		}
		n, err := fillRandom(b.paths.newRoot)
		unix.Sync()
		zs, serr := d.Stat()
		if serr != nil {
			t.Fatal(serr)
		}
		t.Logf("filled %d MiB, then %v; mm_stat %+v", n>>20, err, zs.MM)
		if !errors.Is(err, unix.ENOSPC) {
			t.Errorf("filling / ended with %v, want ENOSPC", err)
		}
		if zs.MM.MemUsedMax > zs.MM.MemLimit || zs.MM.MemLimit != capBytes {
			t.Errorf("RAM used at most %d, cap %d: over it", zs.MM.MemUsedMax, zs.MM.MemLimit)
		}
		if n := failedWrites(t, d); n != 0 {
			t.Errorf("the device failed %d writes", n)
		}
		// Still usable: the fill removed, a write works.
		os.Remove(b.paths.newRoot + "/fill")
		if err := os.WriteFile(b.paths.newRoot+"/after", []byte("x"), 0o644); err != nil {
			t.Errorf("write after the fill: %v", err)
		}
		teardown(b)
	})
	t.Run("unknown algorithm", func(t *testing.T) {
		b := build("zram:nosuch", "32M")
		u := b.status.Upper
		_, cur, _ := d.Algorithms()
		if u.Kind != bootstatus.UpperZram || u.Zram.Algorithm != cur || u.Zram.DisksizeBytes != 32<<20 {
			t.Errorf("upper %+v zram %+v, want the default %s", u, u.Zram, cur)
		}
		if !strings.Contains(strings.Join(b.status.Warnings, "\n"), "ofs-upper=zram:nosuch: the kernel's zram offers") {
			t.Errorf("warnings %q", b.status.Warnings)
		}
		teardown(b)
	})
	t.Run("no mke2fs: tmpfs", func(t *testing.T) {
		zramMkfs = "/nonexistent/mke2fs"
		defer func() { zramMkfs = mkfs }()
		b := build("zram", "32M")
		u := b.status.Upper
		if u.Kind != bootstatus.UpperRAM || u.FSType != "tmpfs" || !strings.Contains(u.Fallback, "no /nonexistent/mke2fs") || b.status.RAM == nil {
			t.Errorf("upper %+v ram %+v", u, b.status.RAM)
		}
		if len(b.status.Reasons) != 1 || b.status.Reasons[0] != u.Fallback {
			t.Errorf("reasons %q, want the fallback's", b.status.Reasons)
		}
		if b.markDegradedUpper(); b.status.Mode != bootstatus.Degraded {
			t.Errorf("mode %q once the layers are in place, want degraded", b.status.Mode)
		}
		var st unix.Statfs_t
		unix.Statfs(b.paths.rw, &st)
		if st.Type != unix.TMPFS_MAGIC {
			t.Errorf("fallback layer type %#x, want tmpfs", st.Type)
		}
		if n, _ := d.Disksize(); n != 0 {
			t.Errorf("the zram device was left set up (disksize %d)", n)
		}
		if err := os.WriteFile(b.paths.newRoot+"/hello", []byte("hi"), 0o644); err != nil {
			t.Error(err)
		}
		for _, m := range []string{b.paths.newRoot, b.paths.rw, b.paths.ro} {
			unix.Unmount(m, 0)
		}
	})
	settle(t, loop)
	if after := sha(t, img); after != before {
		t.Errorf("the real root was written: %s -> %s", before, after)
	}
}

// TestMke2fsFails: a failing mke2fs is an error with its exit status and
// the last of what it said; a missing one says what puts it there.
func TestMke2fsFails(t *testing.T) {
	old := zramMkfs
	t.Cleanup(func() { zramMkfs = old })
	zramMkfs = filepath.Join(t.TempDir(), "mke2fs")
	err := mke2fs("/dev/zram0")
	if err == nil || !strings.Contains(err.Error(), "--zram") {
		t.Errorf("missing: %v", err)
	}
	os.WriteFile(zramMkfs, []byte("#!/bin/sh\necho \"args: $*\"\necho 'mke2fs: bad device' >&2\nexit 3\n"), 0o755)
	err = mke2fs("/dev/zram0")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "mke2fs: bad device") || !strings.Contains(err.Error(), "args: -F -b 4096 -I 256 -i 16384 -m 0 -L ofsroot-zram /dev/zram0") {
		t.Errorf("failing: %v", err)
	}
}
