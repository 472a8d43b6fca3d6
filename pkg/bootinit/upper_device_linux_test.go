package bootinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

// upperImage makes an ext4 image for a persistent layer, attached to a
// loop device.
func upperImage(t *testing.T, size string) (img, loop string) {
	t.Helper()
	img = filepath.Join(t.TempDir(), "upper.img")
	run(t, "mkfs.ext4", "-q", "-F", "-L", "ofs-test-upper", img, size)
	return img, attach(t, img)
}

// layerBoot builds the protected root with the persistent layer on
// upper (a device spec) as the init does, over the root on rootLoop.
func layerBoot(t *testing.T, rootLoop, upper string, reset bool) *boot {
	t.Helper()
	cfg := cmdline.Default()
	cfg.Overlay, cfg.Size, cfg.Root = cmdline.OverlayOn, cmdline.Size{Percent: 5}, rootLoop
	cfg.Upper, _ = parseUpper(t, upper)
	cfg.UpperReset = reset
	b, _ := testBoot(t, rootLoop, cfg)
	b.root.UUID = "root-uuid-1"
	if err := b.x.Run(b.writeProtect(), b.mountRealRoot(b.paths.ro, true)); err != nil {
		t.Fatal(err)
	}
	if err := b.x.Run(b.layerSteps()...); err != nil || b.status.Mode != bootstatus.Protected {
		t.Fatalf("layers: %v; mode %q, reasons %q", err, b.status.Mode, b.status.Reasons)
	}
	b.markDegradedUpper()
	t.Cleanup(func() { unmountBoot(b) })
	return b
}

func parseUpper(t *testing.T, spec string) (cmdline.Upper, []cmdline.Warning) {
	cfg, warns := cmdline.Parse("ofs-upper=" + spec)
	if cfg.Upper.Kind != cmdline.UpperDevice {
		t.Fatalf("ofs-upper=%s: %v", spec, warns)
	}
	return cfg.Upper, warns
}

// unmountBoot takes a test boot's mounts down, for real (a lazy unmount
// could still be writing when an image is hashed).
func unmountBoot(b *boot) {
	for _, m := range []string{b.paths.newRoot, b.paths.rw, b.paths.ro} {
		unix.Unmount(m, 0)
	}
}

func statusUpper(t *testing.T, b *boot) bootstatus.Upper {
	t.Helper()
	if b.status.Upper == nil {
		t.Fatalf("no upper in the status: %+v", b.status)
	}
	return *b.status.Upper
}

// TestDeviceLayerForReal: a change made in one boot is there in the
// next, in the layer's folder on the device; the root is never written;
// the layer is bound to its lower.
func TestDeviceLayerForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	rootImg, rootLoop := testRoot(t)
	before := sha(t, rootImg)
	upImg, upLoop := upperImage(t, "32M")

	b := layerBoot(t, rootLoop, upLoop, false)
	u := statusUpper(t, b)
	if b.status.Mode != bootstatus.Protected || u.Kind != bootstatus.UpperDevice || u.State != bootstatus.UpperNew || u.Device != upLoop || u.FSType != "ext4" || u.Dir != "ofsroot" {
		t.Fatalf("first boot: mode %s upper %+v reasons %q", b.status.Mode, u, b.status.Reasons)
	}
	if b.status.RAM != nil || b.status.Overlay.Upper != "/mnt/root-RW/ofsroot/upper" {
		t.Errorf("status RAM %+v overlay %+v", b.status.RAM, b.status.Overlay)
	}
	if err := os.WriteFile(b.paths.newRoot+"/kept", []byte("across boots"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.paths.rw + "/ofsroot/upper/kept"); err != nil {
		t.Errorf("the write is not in the layer on the device: %v", err)
	}
	rec, err := os.ReadFile(b.paths.rw + "/ofsroot/lower.json")
	if err != nil || !strings.Contains(string(rec), `"root": "UUID=root-uuid-1"`) || !strings.Contains(string(rec), `"marker": "os-release:sha256:`) {
		t.Errorf("lower.json: %s %v", rec, err)
	}
	if err := os.WriteFile(b.paths.ro+"/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("real root writable: %v", err)
	}
	unmountBoot(b)

	b = layerBoot(t, rootLoop, "LABEL=ofs-test-upper", false)
	if u := statusUpper(t, b); u.State != bootstatus.UpperReused || b.status.Mode != bootstatus.Protected {
		t.Fatalf("second boot: mode %s upper %+v", b.status.Mode, u)
	}
	if got, err := os.ReadFile(b.paths.newRoot + "/kept"); string(got) != "across boots" {
		t.Errorf("the change of the first boot is lost: %q %v", got, err)
	}
	unmountBoot(b)
	settle(t, rootLoop)
	if after := sha(t, rootImg); after != before {
		t.Errorf("the root device was written: sha256 %s -> %s", before, after)
	}
	settle(t, upLoop)
	run(t, "e2fsck", "-fn", upImg)
}

// TestDeviceLayerSetAsideForReal: after a reflash with another lower the
// layer is set aside, kept, and a fresh one starts; merged, its file
// would show (the check can fail).
func TestDeviceLayerSetAsideForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	rootImg, rootLoop := testRoot(t)
	_, upLoop := upperImage(t, "32M")

	b := layerBoot(t, rootLoop, upLoop, false)
	os.WriteFile(b.paths.newRoot+"/old-change", []byte("made on the old lower"), 0o644)
	unmountBoot(b)

	// The reflash: the same filesystem UUID, a new build id.
	blockdev.SetReadOnly(rootLoop, false)
	dir := t.TempDir()
	if err := unix.Mount(rootLoop, dir, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir+"/etc/ofsroot", 0o755)
	os.WriteFile(dir+"/etc/ofsroot/build-id", []byte("image-2\n"), 0o644)
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	before := sha(t, rootImg)

	b = layerBoot(t, rootLoop, upLoop, false)
	u := statusUpper(t, b)
	if u.State != bootstatus.UpperSetAside || b.status.Mode != bootstatus.Protected || u.Lower != "UUID=root-uuid-1 build-id:image-2" {
		t.Fatalf("after the reflash: mode %s upper %+v", b.status.Mode, u)
	}
	if !regexp.MustCompile(`^ofsroot\.\d{8}-\d{6}$`).MatchString(u.SetAside) {
		t.Errorf("set aside as %q", u.SetAside)
	}
	if _, err := os.Stat(b.paths.newRoot + "/old-change"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old layer is merged onto the new lower: %v", err)
	}
	kept := filepath.Join(b.paths.rw, u.SetAside, "upper/old-change")
	if got, err := os.ReadFile(kept); string(got) != "made on the old lower" {
		t.Errorf("the set-aside layer lost its file: %q %v", got, err)
	}
	if !strings.Contains(strings.Join(b.status.Warnings, "\n"), "PERSISTENT LAYER SET ASIDE") {
		t.Errorf("not said in the status: %q", b.status.Warnings)
	}
	// Mounted over the new lower as it was, the old layer's file shows:
	// what the binding prevents.
	merged := t.TempDir()
	work := filepath.Join(b.paths.rw, u.SetAside, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", b.paths.ro, filepath.Dir(kept), work)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(merged + "/old-change"); err != nil {
		t.Errorf("merged by hand, the old file does not show: the check above cannot fail: %v", err)
	}
	unix.Unmount(merged, 0)
	unmountBoot(b)

	// The fresh layer is bound to the new lower: reused next time.
	b = layerBoot(t, rootLoop, upLoop, false)
	if u := statusUpper(t, b); u.State != bootstatus.UpperReused {
		t.Errorf("third boot: %+v", u)
	}
	unmountBoot(b)
	settle(t, rootLoop)
	if after := sha(t, rootImg); after != before {
		t.Errorf("the root device was written")
	}
}

// TestDeviceLayerResetForReal: ofs-reset=1 empties the layer at that
// boot only; a leftover of an interrupted reset is removed.
func TestDeviceLayerResetForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	_, rootLoop := testRoot(t)
	upImg, upLoop := upperImage(t, "32M")

	b := layerBoot(t, rootLoop, upLoop, false)
	os.WriteFile(b.paths.newRoot+"/change", []byte("x"), 0o644)
	// As a power cut during an earlier reset would leave it.
	os.MkdirAll(b.paths.rw+"/ofsroot.wiping/upper/deep", 0o755)
	unmountBoot(b)

	b = layerBoot(t, rootLoop, upLoop, true)
	if u := statusUpper(t, b); u.State != bootstatus.UpperReset || b.status.Mode != bootstatus.Protected {
		t.Fatalf("reset boot: mode %s upper %+v", b.status.Mode, u)
	}
	if _, err := os.Stat(b.paths.newRoot + "/change"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the change survived the reset: %v", err)
	}
	if _, err := os.Stat(b.paths.rw + "/ofsroot.wiping"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the emptied layer is still there: %v", err)
	}
	os.WriteFile(b.paths.newRoot+"/after-reset", []byte("y"), 0o644)
	unmountBoot(b)

	b = layerBoot(t, rootLoop, upLoop, false)
	if u := statusUpper(t, b); u.State != bootstatus.UpperReused {
		t.Errorf("boot after the reset: %+v", u)
	}
	if _, err := os.Stat(b.paths.newRoot + "/after-reset"); err != nil {
		t.Errorf("a change made after the reset is lost: %v", err)
	}
	unmountBoot(b)
	settle(t, upLoop)
	run(t, "e2fsck", "-fn", upImg)
}

// TestDeviceLayerFallbackForReal: a layer device that cannot be used
// gives a RAM layer, status degraded with the reason; never the real
// root writable, never the root device written.
func TestDeviceLayerFallbackForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "dd")
	rootImg, rootLoop := testRoot(t)
	before := sha(t, rootImg)
	defer func(w time.Duration) { UpperDeviceWait = w }(UpperDeviceWait)
	UpperDeviceWait = 300 * time.Millisecond

	blank := filepath.Join(t.TempDir(), "blank.img")
	run(t, "dd", "if=/dev/zero", "of="+blank, "bs=1M", "count=4", "status=none")
	blankLoop := attach(t, blank)
	roImg := filepath.Join(t.TempDir(), "ro.img")
	run(t, "mkfs.ext4", "-q", "-F", roImg, "16M")
	roLoop := strings.TrimSpace(run(t, "losetup", "--find", "--show", "--read-only", roImg))
	t.Cleanup(func() { detach(roLoop) })
	_, fullLoop := upperImage(t, "8M")
	fill := t.TempDir()
	if err := unix.Mount(fullLoop, fill, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Create(fill + "/fill")
	for chunk := make([]byte, 1<<16); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	unix.Unmount(fill, 0)

	cases := []struct{ name, spec, reason string }{
		{"missing", "LABEL=no-such-upper", `device "LABEL=no-such-upper" not found after`},
		{"no filesystem", blankLoop, "holds no filesystem this init knows"},
		{"root device", rootLoop, "is the root device itself"},
		{"read-only", roLoop, "is read-only"},
		{"full", fullLoop, "is full"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := layerBoot(t, rootLoop, c.spec, false)
			u := statusUpper(t, b)
			if b.status.Mode != bootstatus.Degraded || u.Kind != bootstatus.UpperRAM || !strings.Contains(u.Fallback, c.reason) ||
				len(b.status.Reasons) != 1 || b.status.Reasons[0] != u.Fallback {
				t.Fatalf("mode %s upper %+v reasons %q", b.status.Mode, u, b.status.Reasons)
			}
			if b.status.RAM == nil || b.status.Overlay == nil || b.status.Overlay.Upper != "/mnt/root-RW/upper" {
				t.Errorf("not on a RAM layer: RAM %+v overlay %+v", b.status.RAM, b.status.Overlay)
			}
			var st unix.Statfs_t
			if err := unix.Statfs(b.paths.rw, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
				t.Errorf("the writable layer is not a tmpfs: %x %v", st.Type, err)
			}
			if err := os.WriteFile(b.paths.newRoot+"/x", nil, 0o644); err != nil {
				t.Errorf("the protected root is not writable in RAM: %v", err)
			}
			if err := os.WriteFile(b.paths.ro+"/x", nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("real root writable: %v", err)
			}
		})
	}
	settle(t, rootLoop)
	if after := sha(t, rootImg); after != before {
		t.Errorf("the root device was written")
	}
}

// TestDeviceLayerOverlayFailsForReal: when the overlay cannot be built
// over a good persistent layer, the layer is given up (its device
// unmounted) and the overlay is built again over RAM; when that fails
// too, the boot is degraded. The root is never written.
func TestDeviceLayerOverlayFailsForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	rootImg, rootLoop := testRoot(t)
	before := sha(t, rootImg)
	_, upLoop := upperImage(t, "32M")
	for _, again := range []bool{true, false} {
		t.Run(map[bool]string{true: "RAM layer instead", false: "degraded"}[again], func(t *testing.T) {
			cfg := cmdline.Default()
			cfg.Overlay, cfg.Size, cfg.Root = cmdline.OverlayOn, cmdline.Size{Percent: 5}, rootLoop
			cfg.Upper, _ = parseUpper(t, upLoop)
			b, _ := testBoot(t, rootLoop, cfg)
			t.Cleanup(func() { unmountBoot(b) })
			if err := b.x.Run(b.writeProtect(), b.mountRealRoot(b.paths.ro, true)); err != nil {
				t.Fatal(err)
			}
			// A file where the new root's folder should be: the overlay's
			// mount fails, over the device layer first.
			os.WriteFile(b.paths.newRoot, nil, 0o644)
			steps := b.layerSteps()
			if err := b.x.Run(steps[:2]...); err != nil {
				t.Fatalf("the overlay's failure stopped the boot: %v", err)
			}
			if b.layer != nil || !b.overlayAgain {
				t.Fatalf("the persistent layer was not given up: layer %+v", b.layer)
			}
			if again {
				os.Remove(b.paths.newRoot)
			}
			if err := b.x.Run(steps[2:]...); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range b.x.Steps {
				names = append(names, s.Name)
			}
			if n := strings.Count(strings.Join(names, "\n"), "mount -t overlay"); n != 2 || !strings.Contains(strings.Join(names, "\n"), "mount -t tmpfs") {
				t.Errorf("steps %q: want the overlay twice, the second over a tmpfs", names)
			}
			if len(b.status.Reasons) == 0 || !strings.Contains(b.status.Reasons[0], "not used: the overlay over it: mount -t overlay") {
				t.Errorf("reasons %q", b.status.Reasons)
			}
			var st unix.Statfs_t
			unix.Statfs(b.paths.rw, &st)
			if again {
				if u := statusUpper(t, b); u.Kind != bootstatus.UpperRAM || u.Fallback != b.status.Reasons[0] {
					t.Errorf("upper %+v", u)
				}
				if b.status.Mode != bootstatus.Protected || len(b.status.Reasons) != 1 || b.status.RAM == nil || st.Type != unix.TMPFS_MAGIC {
					t.Fatalf("mode %q reasons %q RAM %+v layer type %#x", b.status.Mode, b.status.Reasons, b.status.RAM, st.Type)
				}
				if err := os.WriteFile(b.paths.newRoot+"/x", nil, 0o644); err != nil {
					t.Errorf("the protected root is not writable in RAM: %v", err)
				}
				if b.markDegradedUpper(); b.status.Mode != bootstatus.Degraded {
					t.Errorf("mode %q once the layers are in place, want degraded", b.status.Mode)
				}
			} else {
				if b.status.Mode != bootstatus.Degraded || len(b.status.Reasons) != 2 || !strings.HasPrefix(b.status.Reasons[1], "overlay could not be built") || b.newRoot != b.paths.ro {
					t.Fatalf("mode %q reasons %q new root %q", b.status.Mode, b.status.Reasons, b.newRoot)
				}
				// Neither the device nor the tmpfs is left mounted there.
				var rw, parent unix.Stat_t
				unix.Stat(b.paths.rw, &rw)
				unix.Stat(filepath.Dir(b.paths.rw), &parent)
				if rw.Dev != parent.Dev {
					t.Errorf("%s is still a mount (device %#x)", b.paths.rw, rw.Dev)
				}
			}
			unmountBoot(b)
		})
	}
	settle(t, rootLoop)
	if after := sha(t, rootImg); after != before {
		t.Errorf("the root device was written")
	}
}
