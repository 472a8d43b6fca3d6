// Package maintenance makes the real root under a protected root
// writable for one task without a reboot, and without anyone else ever
// seeing it writable: the task runs in a private mount namespace (a
// locked OS thread and the processes it starts) in which the real root
// is remounted read-write; /proc, /sys, /dev and /run are bound into it
// for a chrooted command; and it goes back to read-only when the task
// ends, also on error or a signal.
//
// How others are kept out: remounting without MS_BIND clears the
// read-only flag of the filesystem and of this namespace's copy of the
// mount only. Every other namespace's mount of the real root (the
// system's /mnt/root-RO) keeps its own read-only flag, so writes through
// it still fail with EROFS; only `findmnt`'s filesystem options show rw
// for the moment. If ofsctl is killed with SIGKILL the filesystem stays
// read-write underneath still read-only mounts (ofsctl status warns);
// `mount -o remount,ro /mnt/root-RO` clears it.
//
// Side effects: unshare(2), setns(2), mount(2) with MS_REMOUNT and
// MS_BIND, chroot(2) in the child; all inside the private namespace.
package maintenance

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// notify is signal.Notify; tests replace it to deliver a signal.
var notify = signal.Notify

var signalNotify = signal.Notify

// Writable runs fn with the filesystem mounted at root read-write, in a
// new private mount namespace entered by a dedicated, locked OS thread
// that fn runs on (processes fn starts inherit the namespace). The
// namespace starts as a copy of the caller's. Before Writable returns,
// root is remounted read-only again (if it was read-only) whatever fn
// returned. SIGINT, SIGTERM and SIGHUP received meanwhile are passed to
// onSignal (if not nil) instead of ending the program; Writable then
// returns an error naming the signal.
func Writable(root string, onSignal func(os.Signal), fn func() error) error {
	ns, err := openThreadNS()
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends, Go ends the thread,
		// and with it this namespace (once its children are gone).
		runtime.LockOSThread()
		done <- writable(ns, root, onSignal, fn)
	}()
	return <-done
}

// openThreadNS opens the calling thread's mount namespace.
func openThreadNS() (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening this thread's mount namespace (/proc/thread-self/ns/mnt): %w; is /proc mounted?", err)
	}
	return fd, nil
}

func writable(ns int, root string, onSignal func(os.Signal), fn func() error) (err error) {
	// setns into a mount namespace needs a thread that shares no
	// filesystem context (cwd, root) with the others.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("setns into the caller's mount namespace: %w", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w (needs root, CAP_SYS_ADMIN)", err)
	}
	if err := mountfs.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making every mount private in the maintenance namespace: %w", err)
	}
	m, err := mountAt(root)
	if err != nil {
		return err
	}
	wasRO := m.SuperReadOnly() || m.ReadOnly()

	sigs := make(chan os.Signal, 4)
	notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	var got []string
	stop := make(chan struct{})
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for {
			select {
			case s := <-sigs:
				got = append(got, s.String())
				if onSignal != nil {
					onSignal(s)
				}
			case <-stop:
				return
			}
		}
	}()

	// A protected boot write-protects the device itself (BLKROSET):
	// lift that for the maintenance, put it back after.
	dev, devWasRO := m.Source, false
	if ro, derr := blockdev.IsReadOnly(dev); derr == nil && ro {
		devWasRO = true
		if derr := blockdev.SetReadOnly(dev, false); derr != nil {
			close(stop)
			<-handled
			return fmt.Errorf("making the real root's device %s writable: %w", dev, derr)
		}
	}
	if err := mountfs.Mount("", root, "", unix.MS_REMOUNT, ""); err != nil {
		close(stop)
		<-handled
		if devWasRO {
			blockdev.SetReadOnly(dev, true)
		}
		return fmt.Errorf("making the real root writable in the maintenance namespace: %w", err)
	}
	defer func() {
		close(stop)
		<-handled
		if wasRO {
			rerr := remountRO(root)
			if rerr != nil {
				err = errors.Join(err, rerr)
			}
			if devWasRO && rerr == nil {
				if derr := blockdev.SetReadOnly(dev, true); derr != nil {
					err = errors.Join(err, fmt.Errorf("write-protecting %s again: %w", dev, derr))
				}
			}
		}
		if len(got) > 0 {
			err = errors.Join(err, fmt.Errorf("interrupted by %s; the real root is read-only again", strings.Join(got, ", ")))
		}
	}()
	return fn()
}

// remountRO puts root back to read-only. The kernel refuses (EBUSY)
// while a file is open for writing, or while a file removed or replaced
// during maintenance is still in use: a running program, or the
// overlay's cache of the lower layer. So on EBUSY it syncs, asks the
// kernel to drop unused dentries and inodes (vm.drop_caches=2, which
// lets the overlay release them), and tries again a few times; then it
// says what to do.
func remountRO(root string) error {
	var err error
	for i := 0; i < 10; i++ {
		unix.Sync()
		err = mountfs.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		os.WriteFile(dropCaches, []byte("2"), 0)
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err != nil {
		return fmt.Errorf("the real root could not be made read-only again: %w; a program still uses a file that was changed or removed, or writes to one: stop it (fuser -vm %s), then run `mount -o remount,ro %s`", err, root, root)
	}
	return nil
}

// dropCaches is the kernel's cache-dropping knob.
var dropCaches = "/proc/sys/vm/drop_caches"

// mountAt finds the top mount at point in this thread's namespace.
func mountAt(point string) (mountfs.MountInfo, error) {
	mounts, err := mountfs.ReadMountinfo()
	if err != nil {
		return mountfs.MountInfo{}, err
	}
	m, ok := mountfs.MountAt(mounts, point)
	if !ok {
		return mountfs.MountInfo{}, fmt.Errorf("%s is not a mount point: nothing to make writable (is the root protected? see ofsctl status)", point)
	}
	return m, nil
}
