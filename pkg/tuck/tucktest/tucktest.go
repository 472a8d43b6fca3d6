// Package tucktest tells tests which way package tuck can swap a tree on
// the running kernel: it tries move_mount(MOVE_MOUNT_BENEATH) for real,
// once, in a throwaway mount namespace.
package tucktest

import (
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// moveMountBeneath is tuck.MOVE_MOUNT_BENEATH; tuck's own tests import
// this package, so it cannot import tuck.
const moveMountBeneath = 0x200

var (
	once    sync.Once
	beneath bool
	release string
)

// Beneath reports whether the running kernel mounts beneath
// (MOVE_MOUNT_BENEATH, Linux 6.5 and later, or a backport), and the
// kernel release to name in a skip. It needs root; without it the
// answer is false.
func Beneath() (ok bool, kernel string) {
	once.Do(func() {
		var u unix.Utsname
		if unix.Uname(&u) == nil {
			release = unix.ByteSliceToString(u.Release[:])
		}
		done := make(chan bool)
		go func() {
			// This thread's mount namespace is thrown away with it:
			// the goroutine ends locked, and Go ends the thread.
			runtime.LockOSThread()
			done <- probe()
		}()
		beneath = <-done
	})
	return beneath, release
}

func probe() bool {
	if unix.Unshare(unix.CLONE_NEWNS) != nil || unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "") != nil {
		return false
	}
	base, err := os.MkdirTemp("", "tucktest-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(base)
	if unix.Mount("tmpfs", base, "tmpfs", 0, "size=64k") != nil {
		return false
	}
	defer unix.Unmount(base, unix.MNT_DETACH)
	target, src := base+"/target", base+"/src"
	if os.Mkdir(target, 0o755) != nil || os.Mkdir(src, 0o755) != nil || unix.Mount("tmpfs", target, "tmpfs", 0, "size=64k") != nil {
		return false
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|moveMountBeneath) == nil
}
