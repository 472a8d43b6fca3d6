package bootlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Damaged and hostile root images, for the tests that prove the init
// never writes the card and never hangs over one. Each helper changes an
// ext4 image in place (offset bytes into a disk image, 0 for a bare
// filesystem); they need root (loop devices, mount, debugfs -w).

// fsShutdown is EXT4_IOC_SHUTDOWN (FS_IOC_SHUTDOWN): _IOR('X', 125, __u32).
const fsShutdown = 0x8004587d

// MakeUnclean leaves the filesystem as a power cut during a writable
// boot would: mounted read-write on a loop device, change writes to it
// (its argument is the mount folder), the journal is committed, and the
// filesystem is shut down without writing the changes back to their
// places (FS_IOC_SHUTDOWN with LOGFLUSH). The superblock then says
// needs_recovery and the journal holds change's writes: a mount that
// replays it writes the device, one that does not (noload) does not see
// them.
//
// Side effects: losetup, mount(2) and umount(2) in the caller's mount
// namespace, on a temporary folder.
func MakeUnclean(image string, offset int64, change func(dir string) error) (err error) {
	loop, err := attachLoop(image, offset)
	if err != nil {
		return err
	}
	defer detachLoop(loop)
	dir, err := os.MkdirTemp("", "ofsroot-unclean-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := unix.Mount(loop, dir, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s %s: %w", loop, dir, err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(dir, 0)
		}
	}()
	if err := change(dir); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	// Commit the journal first (a sync of the filesystem's metadata
	// only would do; syncfs commits and also checkpoints, so instead
	// the shutdown's LOGFLUSH commits and stops there).
	if err := unix.IoctlSetPointerInt(int(f.Fd()), fsShutdown, unix.FS_SHUTDOWN_FLAGS_LOGFLUSH); err != nil {
		return fmt.Errorf("FS_IOC_SHUTDOWN %s: %w", dir, err)
	}
	f.Close()
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	mounted = false
	return nil
}

// Edit mounts the filesystem offset bytes into image read-write on a
// loop device, lets change edit it (its argument is the mount folder),
// and unmounts it cleanly: for hostile files (FIFOs, device nodes,
// sockets, links) that debugfs cannot make.
//
// Side effects: losetup, mount(2) and umount(2) in the caller's mount
// namespace, on a temporary folder.
func Edit(image string, offset int64, change func(dir string) error) error {
	loop, err := attachLoop(image, offset)
	if err != nil {
		return err
	}
	defer detachLoop(loop)
	dir, err := os.MkdirTemp("", "ofsroot-edit-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := unix.Mount(loop, dir, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s %s: %w", loop, dir, err)
	}
	cerr := change(dir)
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	return cerr
}

// DamageInode corrupts the on-disk checksum of path's inode (debugfs
// set_inode_field checksum), as a bad sector would: the kernel reports
// "iget: checksum invalid" when it reads it, and records the error in
// the superblock if it may write the device.
func DamageInode(image string, offset int64, path string) error {
	return Debugfs(image, offset, fmt.Sprintf("set_inode_field %s checksum 0xdead", path))
}

// Debugfs runs debugfs -w with one request on the filesystem offset
// bytes into image. debugfs reports most failures on stderr with exit
// status 0, so any output line beyond its banner is an error.
func Debugfs(image string, offset int64, request string) error {
	target := image
	if offset > 0 {
		target = fmt.Sprintf("%s?offset=%d", image, offset)
	}
	out, err := exec.Command("debugfs", "-w", "-R", request, target).CombinedOutput()
	var extra []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "debugfs ") {
			extra = append(extra, l)
		}
	}
	if err != nil || len(extra) > 0 {
		return fmt.Errorf("debugfs -w -R %q %s: %v %s", request, target, err, strings.Join(extra, "; "))
	}
	return nil
}

func attachLoop(image string, offset int64) (string, error) {
	out, err := exec.Command("losetup", "--find", "--show", "--offset", fmt.Sprint(offset), image).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup %s: %v: %s", image, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func detachLoop(loop string) {
	exec.Command("losetup", "-d", loop).Run()
}
