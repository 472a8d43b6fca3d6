package bootinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/units"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// The compressed RAM layer (ofs-upper=zram[:ALGORITHM]): a zram device
// with the compressor asked for, a disk of ofs-size and a hard cap on the
// RAM it takes (mem_limit, by the same rule as the tmpfs layer's size),
// an ext2 filesystem made on it at boot by the initramfs's static mke2fs
// (busybox's), mounted with discard so that deleted files give their RAM
// back. Anything failing falls back to the tmpfs layer, loudly, and the
// boot is degraded with the reason: the root is protected either way.

// Seams for tests: where the zram device and the mke2fs are.
var (
	zramSys  = "/sys"
	zramDevs = "/dev"
	zramMkfs = zram.Mke2fs
	// zramDevice, if set, is the device to use instead of zram0.
	zramDevice *zram.Device
)

// zramFSType is the type the layer is mounted as: ext4's driver mounts
// the ext2 mke2fs makes (Debian's kernels have no ext2 driver of its own).
const zramFSType = "ext4"

// zramLayer is the step that builds the writable layer on a zram device
// at b.paths.rw; size is the tmpfs layer's size (ofs-size, capped) and
// tmpfs the step that mounts that layer, run when the zram one fails.
func (b *boot) zramLayer(mem, size uint64, tmpfs Step) Step {
	alg := b.cfg.Upper.ZramAlgorithm
	name := fmt.Sprintf("zram layer (ofs-upper=%s) at %s, else %s", b.cfg.Upper, b.paths.rw, tmpfs.Name)
	return Step{Name: name, Do: func() error {
		memCap, capped := b.ramCap(mem)
		disksize, limit, cut := zram.Sizes(size, memCap, capped)
		z := &zramSetup{alg: alg, disksize: disksize, limit: limit}
		err := b.x.Run(b.zramSteps(z)...)
		if err == nil {
			if cut {
				b.log.Infof("zram layer: disk %s, below the RAM cap of %s by 1/%d, so that it fills (ENOSPC) before the RAM does", units.Bytes(disksize), units.Bytes(limit), zram.Margin)
			}
			if !capped {
				b.log.Warnf("ofs-size-reserve=0: the zram layer has no RAM cap (mem_limit 0); past the RAM its writes fail with I/O errors")
			}
			return nil
		}
		b.zramFallback(z, err)
		if terr := tmpfs.Do(); terr != nil {
			return fmt.Errorf("zram layer: %v; the tmpfs layer instead: %w", err, terr)
		}
		return nil
	}}
}

// zramSetup is what the zram steps learn.
type zramSetup struct {
	alg             string // asked; then chosen
	offered         []string
	disksize, limit uint64
	dev             zram.Device
	set, mounted    bool
	hotAdded        bool
}

func (b *boot) zramSteps(z *zramSetup) []Step {
	if zramDevice != nil {
		z.dev = *zramDevice
	} else {
		z.dev = zram.At(zramSys, zramDevs, 0)
	}
	asked := z.alg
	return []Step{
		{Name: "modprobe zram " + asked + " (the modules the initramfs tags " + zram.ModuleTag + ")", Do: func() error {
			b.loadZramModules(asked)
			if z.dev.Exists() {
				if n, err := z.dev.Disksize(); err == nil && n == 0 {
					return nil
				}
				// In use (a swap the kernel set up?): take another.
				d, err := zram.HotAdd(zramSys, zramDevs)
				if err != nil {
					return fmt.Errorf("%s is in use and no other zram device can be added: %w", z.dev.Dev, err)
				}
				z.dev, z.hotAdded = d, true
				return nil
			}
			return fmt.Errorf("no zram device (%s): the kernel has no zram; the initramfs needs zram.ko (ofsroot initramfs --zram BUSYBOX)", z.dev.Sys)
		}},
		{Name: fmt.Sprintf("echo %s > comp_algorithm", orDefault(asked, "(the kernel's default)")), Do: func() error {
			offered, current, err := z.dev.Algorithms()
			if err != nil {
				return err
			}
			z.offered = offered
			alg, problem := zram.ChooseAlgorithm(asked, offered, current)
			if problem != "" {
				w := cmdline.Warning{Word: "ofs-upper", Value: b.cfg.Upper.Word, Problem: problem, Default: "zram:" + alg}
				b.log.Loudf("%s", w)
				b.status.Warnings = append(b.status.Warnings, w.String())
			}
			z.alg = alg
			if alg == current {
				return nil
			}
			return z.dev.SetAlgorithm(alg)
		}},
		{Name: fmt.Sprintf("echo %d > mem_limit; echo %d > disksize", z.limit, z.disksize), Do: func() error {
			if z.disksize < zram.MinDisksize {
				return fmt.Errorf("a disk of %s is too small for a filesystem (at least %s; the RAM cap leaves no more)", units.Bytes(z.disksize), units.Bytes(zram.MinDisksize))
			}
			if err := z.dev.SetMemLimit(z.limit); err != nil {
				return err
			}
			z.set = true
			return z.dev.SetDisksize(z.disksize)
		}},
		{Name: fmt.Sprintf("mke2fs -F -b 4096 -I 256 -i 16384 -m 0 -L %s %s", zram.FSLabel, z.dev.Dev), Do: func() error {
			return mke2fs(z.dev.Dev)
		}},
		{Name: fmt.Sprintf("mount -t %s -o discard %s %s", zramFSType, z.dev.Dev, b.paths.rw), Do: func() error {
			if err := os.MkdirAll(b.paths.rw, 0o755); err != nil {
				return err
			}
			if err := mountfs.Mount(z.dev.Dev, b.paths.rw, zramFSType, 0, "discard"); err != nil {
				return err
			}
			z.mounted = true
			// mke2fs made lost+found; the layer's own folders are
			// made next, like the tmpfs layer's.
			b.status.Upper = &bootstatus.Upper{Kind: bootstatus.UpperZram, Asked: b.cfg.Upper.Word, Device: z.dev.Dev, FSType: zramFSType,
				Zram: &bootstatus.Zram{Algorithm: z.alg, Offered: z.offered, DisksizeBytes: z.disksize, MemLimitBytes: z.limit, Mkfs: zramMkfs}}
			return nil
		}},
	}
}

// loadZramModules loads the modules tagged for the zram layer, the asked
// compressor's, and ext4's (the filesystem's driver, not loaded yet when
// the root is of another type). A module missing is found out by the
// device's absence or the compressor not being offered, which say what
// to do.
func (b *boot) loadZramModules(alg string) {
	tags := []string{zram.ModuleTag, "ext2"}
	if alg != "" {
		tags = append(tags, zram.CompressorTag(alg))
	}
	b.loadEntries(func(e modload.Entry) bool {
		for _, t := range e.RootFS {
			if slices.Contains(tags, t) {
				return true
			}
		}
		return false
	})
}

// mke2fs makes the layer's ext2 filesystem: 4 KiB blocks, 256-byte
// inodes (in-inode extended attributes: overlayfs keeps its whiteouts
// and opaque marks there), one inode per 16 KiB, no blocks reserved
// for root (the layer's user is root), filetype (d_type, which overlayfs
// needs) by default. It runs by fork and exec, without os/exec, which
// the init does not otherwise link.
func mke2fs(dev string) error {
	if _, err := os.Stat(zramMkfs); err != nil {
		return fmt.Errorf("no %s in the initramfs (ofsroot initramfs --zram BUSYBOX puts one): %w", zramMkfs, err)
	}
	// busybox picks its applet by argv[0].
	argv := []string{"mke2fs", "-F", "-b", "4096", "-I", "256", "-i", "16384", "-m", "0", "-L", zram.FSLabel, dev}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		w.Close()
		return err
	}
	pid, err := syscall.ForkExec(zramMkfs, argv, &syscall.ProcAttr{Env: []string{"PATH=/sbin:/bin"}, Files: []uintptr{null.Fd(), w.Fd(), w.Fd()}})
	w.Close()
	null.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("exec %s: %w", zramMkfs, err)
	}
	out, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	io.Copy(io.Discard, r)
	r.Close()
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("waiting for %s: %w", zramMkfs, err)
	case ws.Signaled():
		return fmt.Errorf("%s on %s: killed by %v: %s", zramMkfs, dev, ws.Signal(), lastLines(string(out), 3))
	case ws.ExitStatus() != 0:
		return fmt.Errorf("%s on %s: exit status %d: %s", zramMkfs, dev, ws.ExitStatus(), lastLines(string(out), 3))
	}
	return nil
}

// zramFallback undoes a half-built zram layer and says loudly that the
// tmpfs layer is used instead; the boot is degraded with the reason.
func (b *boot) zramFallback(z *zramSetup, err error) {
	if z.mounted {
		mountfs.Unmount(b.paths.rw, 0)
	}
	if z.set {
		// Frees the RAM it holds.
		if rerr := z.dev.Reset(); rerr != nil && !errors.Is(rerr, unix.ENOENT) {
			b.log.Warnf("zram: resetting %s: %v", z.dev.Dev, rerr)
		}
	}
	if z.hotAdded {
		z.dev.HotRemove(zramSys)
	}
	reason := fmt.Sprintf("zram layer ofs-upper=%s not built: %v", b.cfg.Upper.Word, err)
	b.log.Loudf("DEGRADED: %s.\nThe root is still PROTECTED, by the tmpfs RAM layer instead: its writes take uncompressed RAM.\nThe card's root is not written.", reason)
	// The boot is marked degraded once the layers are in place
	// (markDegradedUpper), as for a persistent layer.
	b.status.Reasons = append(b.status.Reasons, reason)
	b.status.Upper = &bootstatus.Upper{Kind: bootstatus.UpperRAM, Asked: b.cfg.Upper.Word, FSType: "tmpfs", Fallback: reason}
}

// ramCap is the RAM the writable layer may take
// (cmdline.Config.RAMCap); false when ofs-size-reserve=0 lifts the cap.
func (b *boot) ramCap(mem uint64) (uint64, bool) {
	avail := mem
	data, err := os.ReadFile(MeminfoFile)
	if err == nil {
		avail, err = ParseMeminfo(string(data), "MemAvailable")
	}
	if err != nil {
		avail = mem
	}
	return b.cfg.RAMCap(mem, avail)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
