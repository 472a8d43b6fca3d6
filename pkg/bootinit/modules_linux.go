package bootinit

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
)

// moduleState is what the module steps share: the order file's entries
// and the uevent socket the root search waits on.
type moduleState struct {
	entries []modload.Entry
	loaded  map[string]bool // by path
	uevents int             // netlink socket, if haveUevents
	// haveUevents says uevents is open.
	haveUevents bool
}

// readModuleOrder reads the order file; none means no modules.
func (b *boot) readModuleOrder() error {
	b.mods.loaded = map[string]bool{}
	f, err := os.Open(modload.OrderFile)
	if errors.Is(err, os.ErrNotExist) {
		b.log.Infof("no %s: no modules to load", modload.OrderFile)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b.mods.entries, err = modload.ParseOrder(f)
	return err
}

// loadEntries loads the entries that want says yes to and are not
// loaded yet, in order, recording each in the status. ENODEV (no such
// hardware here) and EEXIST (built in, or loaded) are not failures.
func (b *boot) loadEntries(want func(modload.Entry) bool) error {
	failed, tried := 0, 0
	for _, e := range b.mods.entries {
		if b.mods.loaded[e.Path] || !want(e) {
			continue
		}
		b.mods.loaded[e.Path] = true
		tried++
		name := e.Name()
		t0 := monotonic()
		err := modload.Load(e.Path, e.Params)
		took := (monotonic() - t0).Seconds()
		var result string
		switch {
		case err == nil:
			result = "loaded"
		case errors.Is(err, unix.EEXIST):
			result = "present"
		case errors.Is(err, unix.ENODEV):
			result = "skipped: no such device here (ENODEV)"
			b.log.Infof("module %s: no matching hardware, skipped", name)
		default:
			failed++
			result = "failed: " + err.Error()
			b.log.Warnf("module %s: %v", name, err)
		}
		b.status.Modules = append(b.status.Modules, bootstatus.Module{Name: name, Result: result, Seconds: took})
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d modules failed to load", failed, tried)
	}
	return nil
}

// afterRoot says whether an entry is loaded only once the root is found
// (or while waiting for it): the root's filesystem modules (the order
// file marks them rootfs=TYPE) and overlay, which nothing needs to find
// the root. On a board whose root device takes a while to appear (an SD
// card) overlay loads in that wait instead of before it.
func afterRoot(e modload.Entry) bool {
	return len(e.RootFS) > 0 || e.Name() == "overlay"
}

// loadRootFSModules loads the filesystem modules the found root needs
// (the order file marks them rootfs=TYPE): the type rootfstype= names,
// else the one the root's superblock says, else all of them; and
// overlay (afterRoot), if the wait for the root did not load it.
func (b *boot) loadRootFSModules() Step {
	types := b.cfg.RootFSType
	if len(types) == 0 && b.root.FSType != "" {
		types = []string{b.root.FSType}
	}
	what := "every filesystem module (the root's type is unknown), and overlay"
	if len(types) > 0 {
		what = "the modules for " + strings.Join(types, ",") + ", and overlay"
	}
	return Step{Name: "modprobe " + what, Optional: true, Do: func() error {
		return b.loadEntries(func(e modload.Entry) bool {
			if len(e.RootFS) == 0 {
				return afterRoot(e) // overlay
			}
			if len(types) == 0 {
				return true
			}
			for _, t := range types {
				if e.WantedFor(t) {
					return true
				}
			}
			return false
		})
	}}
}

// openUevents opens a netlink socket for the kernel's device events, so
// that the root search wakes up when a device appears instead of
// sleeping a fixed interval. Without it the search polls.
func (b *boot) openUevents() {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return
	}
	b.mods.uevents, b.mods.haveUevents = fd, true
}

// waitDevice is the root search's pause while the root device has not
// appeared. The time is not wasted when a filesystem module is still to
// be loaded (an SD card takes a while to be detected after its host
// driver loads): it loads the next one instead, in order, so the likely
// root's (ext4's) come first. Otherwise it waits until the kernel
// reports a device event or d passes, whichever is first.
func (b *boot) waitDevice(d time.Duration) {
	for _, e := range b.mods.entries {
		if !b.mods.loaded[e.Path] {
			b.log.Infof("while waiting for the root: modprobe %s", e.Name())
			b.loadEntries(func(x modload.Entry) bool { return x.Path == e.Path })
			return
		}
	}
	fd := b.mods.uevents
	if !b.mods.haveUevents {
		time.Sleep(d)
		return
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(d/time.Millisecond)); err != nil || n == 0 {
		return
	}
	buf := make([]byte, 8192)
	for {
		if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

// closeUevents closes the socket once the root is found.
func (b *boot) closeUevents() {
	if b.mods.haveUevents {
		unix.Close(b.mods.uevents)
		b.mods.haveUevents = false
	}
}

// bootMemoryLimit caps the Go heap while the collector is off for the
// boot: past it the collector runs anyway, so a surprise cannot exhaust
// memory.
const bootMemoryLimit = 64 << 20

// collectorOffForBoot turns the garbage collector off for the boot (it
// allocates a few megabytes, and each collection costs milliseconds
// under emulation and on small cores) and returns what turns it back on,
// for a supervisor that outlives the boot.
func collectorOffForBoot() (restore func()) {
	oldLimit := debug.SetMemoryLimit(bootMemoryLimit)
	oldPercent := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}
}
