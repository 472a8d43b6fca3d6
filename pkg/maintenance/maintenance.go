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
// What stays reachable from outside, on every kernel: the writable mount
// is the root, the working folder and the open files of the command and
// the processes it starts, so /proc/PID/root, /proc/PID/cwd and
// /proc/PID/fd/N of those processes lead to it. The kernel lets a
// process through those links only if it may ptrace the target
// (PTRACE_MODE_READ): a different user is refused, and so is a root
// process lacking CAP_SYS_PTRACE or any capability the command has (the
// command runs with all of root's); a root process holding
// CAP_SYS_PTRACE passes, whatever the command's dumpable flag or user
// namespace, and can write the real root that way; with CAP_SYS_ADMIN
// it can also setns(2) into the namespace through /proc/PID/ns/mnt (or
// simply remount the real root read-write itself). Such a process is
// outside what a mount can stop; an LSM policy (AppArmor, SELinux) is
// what can deny it ptrace read access. The thread that starts the
// command does not add a way in: while the command runs it waits in the
// caller's namespace, holding the private one by a file descriptor
// only, and goes back in to remount read-only (Writable's fn, which
// runs on that thread, does stay inside for as long as it runs).
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
	return session(root, onSignal, func() (func() error, error) { return nil, fn() })
}

// leaveWhileWaiting is whether the thread leaves the private namespace
// while a started command runs (tests turn it off to show the way in it
// closes).
var leaveWhileWaiting = true

// session is Writable for a command: start runs on the locked thread in
// the private namespace with root writable, and returns wait (or nil
// when all is done). wait runs on the same thread back in the caller's
// namespace, so that nothing reaches the writable mount through this
// thread's /proc/PID/task/TID/root or cwd; then the thread returns into
// the private namespace to make root read-only again.
func session(root string, onSignal func(os.Signal), start func() (wait func() error, err error)) error {
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
		done <- writable(ns, root, onSignal, start)
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

func writable(ns int, root string, onSignal func(os.Signal), start func() (func() error, error)) (err error) {
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
	priv, err := openThreadNS()
	if err != nil {
		return err
	}
	defer unix.Close(priv)
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
		var rerr error
		if wasRO {
			if rerr = remountRO(root); rerr != nil {
				err = errors.Join(err, rerr)
			}
			if devWasRO && rerr == nil {
				if derr := blockdev.SetReadOnly(dev, true); derr != nil {
					err = errors.Join(err, fmt.Errorf("write-protecting %s again: %w", dev, derr))
				}
			}
		}
		if len(got) > 0 {
			again := "the real root is read-only again"
			if !wasRO {
				again = "the real root was writable before and stays so"
			}
			if rerr != nil {
				again = "see above for the real root, which is still writable"
			}
			err = errors.Join(err, fmt.Errorf("interrupted by %s; %s", strings.Join(got, ", "), again))
		}
	}()
	wait, err := start()
	if err != nil || wait == nil {
		return err
	}
	if !leaveWhileWaiting {
		return wait()
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
		// Still inside: wait there.
		return errors.Join(wait(), fmt.Errorf("leaving the maintenance namespace while the command runs: %w", err))
	}
	werr := wait()
	if err := unix.Setns(priv, unix.CLONE_NEWNS); err != nil {
		// The remount below then works on the caller's mount of root:
		// without MS_BIND it still makes the filesystem read-only.
		return errors.Join(werr, fmt.Errorf("going back into the maintenance namespace: %w", err))
	}
	return werr
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
		return fmt.Errorf("the real root is still WRITABLE, making it read-only again failed: %w; a program still writes to a file, or uses one that was replaced or removed (one started during the maintenance and left running?): stop it (fuser -vm %s lists them), then run `mount -o remount,ro %s`, or reboot", err, root, root)
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
