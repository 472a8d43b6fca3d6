package bootinit

import (
	"errors"
	"fmt"
	"github.com/ofsroot/ofsroot/internal/smalljson"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
	"github.com/ofsroot/ofsroot/pkg/units"
)

// The persistent layer (ofs-upper=DEVICE): a filesystem on a partition
// mounted read-write at /mnt/root-RW (mounting replays an ext4 journal),
// holding DIR/upper and DIR/work for the overlay and DIR/lower.json, the
// lower the layer was made on. The real root stays read-only and
// write-protected as in every protected boot. A device that cannot be
// used gives way to the RAM layer, loudly, with the boot's status
// "degraded": protected, but not persistent.

// UpperDeviceWait is how long the init waits for a persistent layer's
// device to appear once the root is found.
var UpperDeviceWait = cmdline.DefaultDeviceWait

// upperMinFree is the free space below which a persistent layer counts
// as full: the RAM layer stands in, since every write would fail.
const upperMinFree = 1 << 20

// deviceLayer is the persistent layer being built.
type deviceLayer struct {
	dev    blockdev.Device
	fstype string
	// dir is the layer's folder, under the writable layer's mount.
	dir     string
	mounted bool
	status  bootstatus.Upper
}

// deviceLayerSteps find the device, mount it and bind the layer's folder
// to this lower; b.layer is the layer they build. A failure gives way to
// the RAM layer (deviceFallback, in layerSteps).
func (b *boot) deviceLayerSteps() []Step {
	b.layer = &deviceLayer{status: bootstatus.Upper{Kind: bootstatus.UpperDevice, Asked: b.cfg.Upper.Word, Dir: b.cfg.Upper.Dir}}
	u, l := b.cfg.Upper, b.layer
	l.dir = filepath.Join(b.paths.rw, u.Dir)
	reset := ""
	if b.cfg.UpperReset {
		reset = ", emptied first (ofs-reset=1)"
	}
	return []Step{
		{Name: fmt.Sprintf("find the upper device %q (up to %s)", u.Device, UpperDeviceWait), Do: b.findUpperDevice},
		{Name: "modprobe the modules for the upper device's filesystem", Optional: true, Do: func() error {
			return b.loadEntries(func(e modload.Entry) bool { return len(e.RootFS) > 0 && e.WantedFor(l.fstype) })
		}},
		{Name: fmt.Sprintf("mount -o rw the upper device on %s (an unclean journal is replayed)", b.paths.rw), Do: b.mountUpperDevice},
		{Name: fmt.Sprintf("bind %s to this lower (%s: reuse it, or set aside one made on another lower)%s", u.Dir, LowerRecordFile, reset), Do: b.bindLayer},
		{Name: fmt.Sprintf("rm -rf %s%s (a layer emptied by ofs-reset)", u.Dir, wipingSuffix), Optional: true, Do: func() error {
			return os.RemoveAll(l.dir + wipingSuffix)
		}},
		{Name: fmt.Sprintf("check the free space on the upper device (at least %s)", units.Bytes(upperMinFree)), Do: b.checkUpperSpace},
	}
}

// findUpperDevice waits (bounded) for the device as findRoot does, and
// refuses the root's own device: that would write the card.
func (b *boot) findUpperDevice() error {
	spec, l := b.cfg.Upper.Device, b.layer
	start := monotonic()
	for {
		devs, err := blockdev.Scan("/sys", "/dev")
		if err == nil {
			d, rerr := blockdev.Resolve(spec, devs)
			if rerr == nil {
				if err := b.checkUpperDevice(d); err != nil {
					return err
				}
				l.dev, l.status.Device = d, d.Path
				b.log.Infof("upper %q is %s (%s)", spec, d.Path, blockdev.Summary([]blockdev.Device{d}))
				return nil
			}
			if !errors.Is(rerr, blockdev.ErrNotFound) {
				return rerr
			}
		}
		if waited := monotonic() - start; waited >= UpperDeviceWait {
			return fmt.Errorf("device %q not found after %.1f s; block devices seen: %s", spec, waited.Seconds(), blockdev.Summary(devs))
		}
		b.waitDevice(50 * time.Millisecond)
	}
}

// checkUpperDevice refuses a device the layer must not be on.
func (b *boot) checkUpperDevice(d blockdev.Device) error {
	r := b.root
	switch {
	case d.Major == r.Major && d.Minor == r.Minor || d.Path == r.Path:
		return fmt.Errorf("%s is the root device itself: the layer would write the protected card; name another partition", d.Path)
	case r.Disk != "" && d.Name == r.Disk:
		return fmt.Errorf("%s is the whole disk the root %s is on: writing it would write the protected card; name a partition of its own", d.Path, r.Path)
	}
	switch d.FSType {
	case "ext2", "ext3", "ext4":
		b.layer.fstype = "ext4"
	case "xfs", "btrfs":
		b.layer.fstype = d.FSType
	case "":
		return fmt.Errorf("%s holds no filesystem this init knows; make one, e.g. mkfs.ext4 -L ofsroot-upper %s (it will be used from the next boot)", d.Path, d.Path)
	default:
		return fmt.Errorf("%s holds %s, which cannot hold an overlay's upper layer (ext4, xfs or btrfs can)", d.Path, d.FSType)
	}
	b.layer.status.FSType = b.layer.fstype
	if ro, err := blockdev.IsReadOnly(d.Path); err == nil && ro {
		return fmt.Errorf("%s is read-only (a write-protect switch, or blockdev --setro): a persistent layer needs it writable", d.Path)
	}
	return nil
}

// mountUpperDevice mounts the device read-write: ext4 replays its
// journal on the way, which is the whole of the repair after a power
// cut (the init carries no fsck). errors=remount-ro turns a damaged
// layer read-only rather than panicking the machine.
func (b *boot) mountUpperDevice() error {
	l := b.layer
	data := ""
	if l.fstype == "ext4" {
		data = "errors=remount-ro"
		if f, err := os.Open(l.dev.Path); err == nil {
			st, ok, _ := blockdev.ReadExtState(f)
			f.Close()
			if ok && st.NeedsRecovery {
				b.log.Warnf("the journal of the upper device %s needs recovery (a power cut or crash while it was in use): mounting it replays it", l.dev.Path)
			}
			if ok && (st.HasErrors || st.ErrorCount > 0) {
				b.warnLoud(fmt.Sprintf("DAMAGED UPPER: the filesystem on %s (the persistent layer) has recorded errors (%d). It is used, but check it with e2fsck -f %s in a maintenance boot (overlayfs=no).", l.dev.Path, st.ErrorCount, l.dev.Path))
			}
		}
	}
	if err := os.MkdirAll(b.paths.rw, 0o755); err != nil {
		return err
	}
	if err := mountfs.Mount(l.dev.Path, b.paths.rw, l.fstype, unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return err
	}
	l.mounted = true
	var st unix.Statfs_t
	if err := unix.Statfs(b.paths.rw, &st); err != nil {
		return err
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return fmt.Errorf("%s was mounted read-only by the kernel (a damaged filesystem?); check it with e2fsck -f %s", l.dev.Path, l.dev.Path)
	}
	return nil
}

// bindLayer makes the layer's folder fit this lower: reused when its
// record names this lower, emptied when ofs-reset asks, else (another
// lower, no record, not a folder) set aside under a new name and a fresh
// one made. A layer is never merged onto a lower it was not made on,
// and never deleted but by ofs-reset.
func (b *boot) bindLayer() error {
	l := b.layer
	if err := noLinksBelow(b.paths.rw, l.dir); err != nil {
		return err
	}
	want := b.lowerRecord()
	l.status.Lower = want.String()
	l.status.State = bootstatus.UpperNew
	fi, err := os.Lstat(l.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case b.cfg.UpperReset:
		if err := os.RemoveAll(l.dir + wipingSuffix); err != nil {
			return err
		}
		if err := os.Rename(l.dir, l.dir+wipingSuffix); err != nil {
			return err
		}
		l.status.State = bootstatus.UpperReset
		b.warnLoud(fmt.Sprintf("PERSISTENT LAYER RESET (ofs-reset=1): the layer %s on %s is emptied at this boot; a fresh one starts.", b.cfg.Upper.Dir, l.dev.Path))
	default:
		why := ""
		if !fi.IsDir() {
			why = "it is not a folder"
		} else {
			data, rerr := rootfile.ReadFile(l.dir, "/"+LowerRecordFile, maxLowerRecord)
			var have lowerRecord
			if rerr == nil {
				have, rerr = parseLowerRecord(data)
			}
			switch {
			case errors.Is(rerr, os.ErrNotExist):
				why = "it has no " + LowerRecordFile + " saying which lower it was made on"
			case rerr != nil:
				why = fmt.Sprintf("its %s cannot be read (%v)", LowerRecordFile, rerr)
			case !have.sameLower(want):
				why = fmt.Sprintf("it was made on another lower (%s; this root is %s)", have, want)
			}
		}
		if why == "" {
			l.status.State = bootstatus.UpperReused
			b.log.Infof("persistent layer %s on %s: made on this lower (%s), reused", b.cfg.Upper.Dir, l.dev.Path, want)
			return mkdirs(l.dir+"/upper", l.dir+"/work")
		}
		aside := setAsideName(l.dir, time.Now(), func(p string) bool { _, err := os.Lstat(p); return err == nil })
		if err := os.Rename(l.dir, aside); err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.paths.rw, aside)
		l.status.State, l.status.SetAside = bootstatus.UpperSetAside, rel
		b.warnLoud(fmt.Sprintf("PERSISTENT LAYER SET ASIDE: the layer %s on %s does not fit this root: %s.\nIt is NOT merged onto this root: it is kept, renamed to %s on that device, and a fresh empty layer starts now.\nIts files are in %s/%s/upper after the boot, to copy back what is still wanted.", b.cfg.Upper.Dir, l.dev.Path, why, rel, bootstatus.WritableLayer, rel))
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	if err := mkdirs(l.dir+"/upper", l.dir+"/work"); err != nil {
		return err
	}
	data, err := smalljson.MarshalIndent(want, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.dir, LowerRecordFile, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return syncfs(l.dir)
}

// lowerRecord is the record of the lower being booted: the root's
// identity and its content marker, read inside the read-only root.
func (b *boot) lowerRecord() lowerRecord {
	buildID, _ := b.readRootFile(b.paths.ro, BuildIDFile, 4<<10)
	var osRelease []byte
	if cleanBuildID(buildID) == "" {
		osRelease, _ = b.readRootFile(b.paths.ro, "/etc/os-release", 64<<10)
	}
	r := lowerRecord{Version: 1, Root: rootIdentity(b.root), Marker: lowerMarker(buildID, osRelease), Device: b.root.Path, MadeBy: b.status.OfsrootVersion}
	if now := time.Now(); now.Year() >= 2020 {
		r.MadeAt = now.UTC().Format(time.RFC3339)
	}
	return r
}

// checkUpperSpace refuses a full layer: every write would fail.
func (b *boot) checkUpperSpace() error {
	var st unix.Statfs_t
	if err := unix.Statfs(b.paths.rw, &st); err != nil {
		return err
	}
	if free := st.Bfree * uint64(st.Bsize); free < upperMinFree {
		return fmt.Errorf("%s is full (%s free): boot once with ofs-reset=1 (ofsctl upper reset) to empty the layer, or free space in a maintenance boot", b.layer.dev.Path, units.Bytes(free))
	}
	return nil
}

// deviceFallback gives up the persistent layer: its device is unmounted
// (nothing written after this) and the RAM layer stands in. The boot is
// marked degraded once the layers are in place (markDegradedUpper); it
// goes on (nil).
func (b *boot) deviceFallback(err error) error {
	l := b.layer
	reason := fmt.Sprintf("persistent layer ofs-upper=%s not used: %v", b.cfg.Upper.Word, err)
	if l.mounted {
		if uerr := mountfs.Unmount(b.paths.rw, 0); uerr != nil {
			mountfs.Unmount(b.paths.rw, unix.MNT_DETACH)
		}
	}
	b.layer = nil
	b.status.Upper = &bootstatus.Upper{Kind: bootstatus.UpperRAM, Asked: b.cfg.Upper.Word, Device: l.dev.Path, FSType: l.fstype, Dir: b.cfg.Upper.Dir, Fallback: reason}
	b.status.Reasons = append(b.status.Reasons, reason)
	b.log.Loudf("DEGRADED: %s.\nThe root is still PROTECTED, by a RAM layer instead: changes made in this boot are NOT kept across a reboot.\nThe card's root is not written. Fix the device (or ofs-upper=) and reboot to get the persistent layer back.", reason)
	return nil
}

// markDegradedUpper is called once the layers are in place: a boot whose
// persistent layer fell back to RAM is "degraded" in its status, with the
// reason, though its root is protected. (A sandbox keeps its mode; the
// reason is in the status all the same.)
func (b *boot) markDegradedUpper() {
	if b.cfg.Upper.Kind == cmdline.UpperDevice && !b.cfg.Overlay.Protected() {
		b.log.Warnf("ofs-upper=%s ignored: the root is not protected (overlayfs=%s), so there is no writable layer", b.cfg.Upper.Word, b.cfg.Overlay)
	}
	if b.layer != nil && b.status.Mode == bootstatus.Protected {
		b.layer.status.Dir = b.cfg.Upper.Dir
		s := b.layer.status
		b.status.Upper = &s
		return
	}
	if b.status.Upper != nil && b.status.Upper.Fallback != "" && b.status.Mode == bootstatus.Protected && b.cfg.Overlay != cmdline.OverlaySandbox {
		b.status.Mode = bootstatus.Degraded
	}
}

// upperPaths are the overlay's upper and work folders: on the persistent
// layer when there is one, else in the RAM layer.
func (b *boot) upperPaths() (upper, work string, onDevice bool) {
	if b.layer != nil {
		return b.layer.dir + "/upper", b.layer.dir + "/work", true
	}
	return b.paths.rw + "/upper", b.paths.rw + "/work", false
}

// noLinksBelow refuses a layer folder reached through a symbolic link
// on the device: the folders are made and renamed by path, and must stay
// on it.
func noLinksBelow(mount, dir string) error {
	rel, err := filepath.Rel(mount, dir)
	if err != nil {
		return err
	}
	parts := strings.Split(rel, "/")
	p := mount
	for i, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s on the upper device is not a folder (ofs-upper-dir=%s)", strings.Join(parts[:i+1], "/"), rel)
		}
	}
	return nil
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if fi, err := os.Lstat(d); err != nil {
			return err
		} else if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", d)
		}
	}
	return nil
}

// syncfs flushes the filesystem holding dir.
func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// deviceOverlayStatus records the overlay over a persistent layer: no
// RAM layer, the upper and work folders in the layer's folder.
func (b *boot) deviceOverlayStatus() {
	dir := filepath.Join(bootstatus.WritableLayer, b.cfg.Upper.Dir)
	b.status.RAM, b.status.Overlay.Upper, b.status.Overlay.Work = nil, dir+"/upper", dir+"/work"
}
