// Package tuck replaces a read-only tree mounted somewhere (an
// application bundle as squashfs at /opt/app, say) with a new one, with
// no moment at which the path is empty or missing.
//
// The new tree is made as a detached mount (fsopen/fsmount of an image
// on a read-only loop device, or open_tree(OPEN_TREE_CLONE) of a
// folder), attached beneath the old one with
// move_mount(MOVE_MOUNT_BENEATH) (Linux 6.5 and later), and the old one
// is then detached with umount2(MNT_DETACH), which reveals the new one
// in one step; programs that still have files of the old tree open keep
// them until they close them.
//
// The kernel refuses MOVE_MOUNT_BENEATH with EINVAL when it is too old
// (Debian 12's 6.1), and also in some layouts: the target is the
// caller's root, or (per the kernel's rules) its parent is the
// namespace's root mount, as a tree directly on an initramfs's rootfs
// is; keep swappable trees under a sub-mount. (On 6.18 a tree on a
// disk-backed / was tucked fine.) On EINVAL, Swap falls back
// to mounting the new tree over the old one (no gap either, as systemd's
// mount_exchange_graceful does), and says so: the old tree then stays
// mounted, hidden, until reboot.
package tuck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MOVE_MOUNT_BENEATH (Linux 6.5, include/uapi/linux/mount.h) is missing
// from golang.org/x/sys/unix.
const MOVE_MOUNT_BENEATH = 0x200

// Method is how the new tree was put in place.
type Method string

const (
	// Beneath: attached beneath the old tree, which was then detached.
	Beneath Method = "beneath"
	// Over: mounted over the old tree, which stays mounted underneath.
	Over Method = "over"
)

// Options is one swap.
type Options struct {
	// Target is where the old tree is mounted (a mount's root).
	Target string
	// Source is the new tree: a filesystem image file (attached to a
	// read-only loop device) or a folder (cloned, read-only).
	Source string
	// FSType is the image's filesystem type; default squashfs.
	FSType string
	// NoBeneath skips MOVE_MOUNT_BENEATH and mounts over (as on old
	// kernels); for tests and for kernels known to lack it.
	NoBeneath bool
}

// Result says what Swap did.
type Result struct {
	Target string `json:"target"`
	Source string `json:"source"`
	Method Method `json:"method"`
	// Loop is the loop device an image was attached to.
	Loop string `json:"loop,omitempty"`
	// Note explains a fallback.
	Note string `json:"note,omitempty"`
}

// Error is a failed step, keeping the errno.
type Error struct {
	Op   string
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Swap puts the tree at o.Source in place of the one mounted at o.Target.
//
// Side effects: may attach a loop device (auto-clearing); move_mount(2)
// and umount2(2) at o.Target in the caller's mount namespace.
func Swap(o Options) (*Result, error) {
	target, err := filepath.Abs(o.Target)
	if err != nil {
		return nil, err
	}
	if err := mountRoot(target); err != nil {
		return nil, err
	}
	res := &Result{Target: target, Source: o.Source}
	fd, loop, err := detachedTree(o)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	res.Loop = loop

	if !o.NoBeneath {
		err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_BENEATH)
		switch {
		case err == nil:
			res.Method = Beneath
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				return res, &Error{Op: "umount2 MNT_DETACH (the old tree, now on top of the new one)", Path: target, Err: err}
			}
			return res, nil
		case errors.Is(err, unix.EINVAL):
			res.Note = fmt.Sprintf("move_mount(MOVE_MOUNT_BENEATH) refused (%v): the kernel is older than 6.5, or %s cannot be tucked under here (put it under a sub-mount); mounted the new tree over the old one instead, which stays mounted beneath it until reboot", err, target)
		default:
			return res, &Error{Op: "move_mount MOVE_MOUNT_BENEATH", Path: target, Err: err}
		}
	} else {
		res.Note = "mounted the new tree over the old one, which stays mounted beneath it until reboot"
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return res, &Error{Op: "move_mount", Path: target, Err: err}
	}
	res.Method = Over
	return res, nil
}

// mountRoot checks that target is the root of a mount.
func mountRoot(target string) error {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, target, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st); err != nil {
		return &Error{Op: "statx", Path: target, Err: err}
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("%s is not a mount point: mount the first tree there before swapping in a new one", target)
	}
	return nil
}

// detachedTree makes the new tree as a mount attached nowhere yet.
func detachedTree(o Options) (fd int, loop string, err error) {
	st, err := os.Stat(o.Source)
	if err != nil {
		return -1, "", err
	}
	if st.IsDir() {
		fd, err := unix.OpenTree(unix.AT_FDCWD, o.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return -1, "", &Error{Op: "open_tree OPEN_TREE_CLONE", Path: o.Source, Err: err}
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			unix.Close(fd)
			return -1, "", &Error{Op: "mount_setattr MOUNT_ATTR_RDONLY", Path: o.Source, Err: err}
		}
		return fd, "", nil
	}
	fstype := o.FSType
	if fstype == "" {
		fstype = "squashfs"
	}
	loop, loopFd, err := attachLoop(o.Source)
	if err != nil {
		return -1, "", err
	}
	defer unix.Close(loopFd) // the mount keeps it; auto-clear frees it after
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, loop, &Error{Op: "fsopen", Path: fstype, Err: err}
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", loop); err != nil {
		return -1, loop, &Error{Op: "fsconfig source", Path: loop, Err: err}
	}
	if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
		return -1, loop, &Error{Op: "fsconfig ro", Path: loop, Err: err}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, loop, &Error{Op: "fsconfig create (" + fstype + ")", Path: o.Source, Err: err}
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return -1, loop, &Error{Op: "fsmount", Path: o.Source, Err: err}
	}
	return mfd, loop, nil
}

// attachLoop attaches image to a free loop device, read-only and
// auto-clearing (detached when the last user closes it).
func attachLoop(image string) (string, int, error) {
	img, err := os.Open(image)
	if err != nil {
		return "", -1, err
	}
	defer img.Close()
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, &Error{Op: "open", Path: "/dev/loop-control", Err: err}
	}
	defer unix.Close(ctl)
	for try := 0; try < 5; try++ {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", -1, &Error{Op: "LOOP_CTL_GET_FREE", Path: "/dev/loop-control", Err: err}
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", -1, &Error{Op: "open", Path: dev, Err: err}
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(fd, &cfg)
		if err == nil {
			return dev, fd, nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EBUSY) { // EBUSY: someone took it first
			return "", -1, &Error{Op: "LOOP_CONFIGURE " + image, Path: dev, Err: err}
		}
	}
	return "", -1, fmt.Errorf("no free loop device for %s", image)
}
