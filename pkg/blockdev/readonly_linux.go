package blockdev

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SetReadOnly sets (ro true) or clears the kernel's read-only flag of the
// block device at path with the BLKROSET ioctl: below every filesystem,
// so that no mount of it, however it is mounted, can write the device
// (ext4 then neither replays a journal nor records errors in its
// superblock), and no program can write it (depending on the kernel the
// open for writing or the write itself is refused). The flag
// stays until cleared or the device goes away; on a partition it covers
// that partition only. Needs CAP_SYS_ADMIN.
//
// Side effects: ioctl(BLKROSET) on path.
func SetReadOnly(path string, ro bool) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	v := 0
	if ro {
		v = 1
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, v); err != nil {
		return &os.PathError{Op: fmt.Sprintf("ioctl BLKROSET %d", v), Path: path, Err: err}
	}
	return nil
}

// IsReadOnly reads the block device's read-only flag (BLKROGET).
func IsReadOnly(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return false, &os.PathError{Op: "ioctl BLKROGET", Path: path, Err: err}
	}
	return v != 0, nil
}
