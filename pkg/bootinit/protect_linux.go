package bootinit

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
	"github.com/ofsroot/ofsroot/pkg/units"
)

// What keeps the card unwritten and the init alive, whatever the card
// holds: the device is write-protected below the filesystem, an unclean
// journal is not replayed, a reboot-on-panic timeout is set, and the
// root's files are read through package rootfile.

// DefaultPanicTimeout is kernel.panic when the command line sets no
// panic=: a field device that panics reboots instead of sitting hung
// (Debian's kernels default to 0, wait for ever).
const DefaultPanicTimeout = 10

// PanicFile is where kernel.panic is set.
var PanicFile = "/proc/sys/kernel/panic"

// Caps on what the init reads from the root.
const (
	fstabLimit    = 1 << 20
	hostnameLimit = 4 << 10
)

// panicTimeout sets the reboot-on-panic timeout unless panic= is given.
func (b *boot) panicTimeout() Step {
	if b.cfg.PanicSet {
		return Step{Name: "kernel.panic: left as panic= on the command line says", Optional: true, Do: func() error { return nil }}
	}
	return Step{Name: fmt.Sprintf("sysctl kernel.panic=%d (reboot %d s after a kernel panic; panic= on the command line to change)", DefaultPanicTimeout, DefaultPanicTimeout), Optional: true, Do: func() error {
		return os.WriteFile(PanicFile, []byte(fmt.Sprint(DefaultPanicTimeout)), 0)
	}}
}

// writeProtect is the first step of a protected boot, before any mount
// of the root: BLKROSET on the root device, so that no filesystem can
// write it (ext4 neither replays its journal nor records errors on a
// read-only device), and a look at the ext superblock to decide how to
// mount it. It never fails the boot: without the flag the mount is still
// read-only and still skips the journal, and it says so.
func (b *boot) writeProtect() Step {
	dev := b.root.Path
	return Step{Name: "blockdev --setro " + dev, Optional: true, Do: func() error {
		b.checkExtState(dev)
		if err := blockdev.SetReadOnly(dev, true); err != nil {
			b.warnLoud(fmt.Sprintf("could not write-protect %s below the filesystem (%v): it is mounted read-only, but the kernel could still write it (ext4 error records)", dev, err))
			return err
		}
		b.writeProtected = true
		return nil
	}}
}

// checkExtState reads the root's ext superblock: an unclean journal is
// not replayed (noload) under protection, loudly; recorded errors are
// reported.
func (b *boot) checkExtState(dev string) {
	f, err := os.Open(dev)
	if err != nil {
		b.log.Warnf("reading the superblock of %s: %v", dev, err)
		return
	}
	st, ok, err := blockdev.ReadExtState(f)
	f.Close()
	if err != nil || !ok {
		return
	}
	if st.NeedsRecovery {
		b.noLoad = true
		b.warnLoud(fmt.Sprintf("UNCLEAN ROOT: the journal of %s needs recovery (it was not cleanly unmounted: a power cut during a writable boot).\n"+
			"Protected boots never write the card, so the journal is NOT replayed (mount option noload): the last changes made before that cut are NOT visible, and the files they touched may look old or inconsistent.\n"+
			"To repair: boot once with overlayfs=no (the kernel replays the journal), or run e2fsck -p %s from a maintenance system.", dev, dev))
	}
	if st.HasErrors || st.ErrorCount > 0 {
		b.warnLoud(fmt.Sprintf("DAMAGED ROOT: the filesystem on %s has recorded errors (%d). Under protection nothing is written to it; check it with e2fsck -f %s in a maintenance boot (overlayfs=no).", dev, st.ErrorCount, dev))
	}
	if st.ErrorsPanic && !strings.Contains(b.cfg.RootFlags, "errors=") {
		// A damaged file must not take a field device down: under
		// protection nothing is written, so reading on is safe.
		b.errorsContinue = true
		b.log.Warnf("the filesystem on %s says errors=panic: mounting it with errors=continue (rootflags=errors=... to choose)", dev)
	}
	if st.Orphans && !st.NeedsRecovery {
		b.log.Warnf("the filesystem on %s has orphaned files to free; a writable boot frees them, a protected one leaves them", dev)
	}
}

// warnLoud says msg framed on the console and records it in the status.
func (b *boot) warnLoud(msg string) {
	b.log.Loudf("%s", msg)
	b.status.Warnings = append(b.status.Warnings, strings.ReplaceAll(msg, "\n", " "))
}

// MeminfoFile is where ramSize reads MemAvailable (a seam for tests).
var MeminfoFile = "/proc/meminfo"

// ramSize is the RAM layer's size: what ofs-size asks for, capped below
// the memory available now, so that the kernel and the programs keep a
// reserve (cmdline.Config.RAMCap) and filling / ends in ENOSPC, not in
// the OOM killer.
func (b *boot) ramSize(mem uint64) uint64 {
	size := b.cfg.Size.For(mem)
	avail := mem
	data, err := os.ReadFile(MeminfoFile)
	if err == nil {
		avail, err = ParseMeminfo(string(data), "MemAvailable")
	}
	if err != nil {
		b.log.Warnf("reading MemAvailable: %v; capping the RAM layer against MemTotal", err)
		avail = mem
	}
	limit, capped := b.cfg.RAMCap(mem, avail)
	if !capped {
		if size > avail {
			b.log.Warnf("ofs-size=%s (%s) is more than the available RAM (%s) and ofs-size-reserve=0 lifts the cap: filling / may exhaust memory", b.cfg.Size, units.Bytes(size), units.Bytes(avail))
		}
		return size
	}
	if size > limit {
		msg := fmt.Sprintf("ofs-size=%s (%s) leaves too little RAM: the RAM layer is capped at %s (MemAvailable %s minus a reserve of %s for the kernel and the programs; MemTotal %s; ofs-size-reserve= changes the reserve)",
			b.cfg.Size, units.Bytes(size), units.Bytes(limit), units.Bytes(avail), units.Bytes(avail-min(avail, limit)), units.Bytes(mem))
		b.log.Warnf("%s", msg)
		b.status.Warnings = append(b.status.Warnings, msg)
		return limit
	}
	return size
}

// readRootFile reads a file of the root being booted, inside it
// (package rootfile). A file that is there but cannot be used (a FIFO, a
// device, too large...) is reported loudly; the caller then uses its
// safe default. Missing is (nil, nil).
func (b *boot) readRootFile(root, path string, limit int64) ([]byte, error) {
	data, err := rootfile.ReadFile(root, path, limit)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		b.log.Warnf("ignoring the root's %s: %v", path, err)
		b.status.Warnings = append(b.status.Warnings, fmt.Sprintf("ignored the root's %s: %v", path, err))
		return nil, err
	}
	return data, nil
}

// refusedFstab is the fstab a degraded boot shadows a refused one with:
// no "/" entry, so the real init leaves the root read-only.
func refusedFstab(reason error) []byte {
	return []byte(fmt.Sprintf("# ofsroot: the real root's /etc/fstab was refused (%v);\n# this empty one (in RAM) is used instead. The root stays read-only.\n", reason))
}
