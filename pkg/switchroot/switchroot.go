// Package switchroot hands the machine from the initramfs to the real
// root, the way an initramfs must: the initramfs is the namespace's root
// mount (rootfs) and cannot be unmounted or pivoted away, so its files
// are deleted to free the RAM they hold, and the new root is moved on top
// of it.
//
// Side effects: moves mounts, deletes the initramfs's files, changes the
// process's root and working directory. Then FindInit and Exec start the
// real init.
package switchroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
)

// DefaultInits are tried in order when init= is not given, as the kernel
// does.
var DefaultInits = []string{"/sbin/init", "/etc/init", "/bin/init", "/bin/sh"}

// Switch moves each of moves (e.g. /dev, /proc, /sys, /run) into newRoot,
// frees the initramfs, and makes newRoot the root of the process. A mount
// that cannot be moved (its folder is missing in a read-only root) is
// reported through warn and left behind, not fatal: the real init mounts
// its own /proc, /sys and /dev.
func Switch(newRoot string, moves []string, warn func(string, ...any)) error {
	for _, m := range moves {
		dst := filepath.Join(newRoot, m)
		if err := os.MkdirAll(dst, 0o755); err != nil && !dirExists(dst) {
			warn("cannot create %s in the new root (%v); leaving %s behind", m, err, m)
			// A mount we cannot move must not stay busy on the
			// initramfs; a lazy unmount lets it go.
			mountfs.Unmount(m, unix.MNT_DETACH)
			continue
		}
		if err := mountfs.Move(m, dst); err != nil {
			warn("%v; leaving %s behind", err, m)
			mountfs.Unmount(m, unix.MNT_DETACH)
		}
	}
	// chdir into the new root first: after the move below, "/" still
	// names the old rootfs for this process until chroot(".").
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", newRoot, err)
	}
	newDev, err := deviceOf(".")
	if err != nil {
		return err
	}
	oldDev, err := deviceOf("/")
	if err != nil {
		return err
	}
	// Free the initramfs: its files live in RAM for as long as anything
	// references them. Only files on rootfs itself are removed; the walk
	// never enters another filesystem, so the new root (mounted under it)
	// is safe even though it is still reachable from "/".
	if newDev != oldDev {
		if err := removeTree("/", oldDev, true); err != nil {
			warn("freeing the initramfs: %v", err)
		}
	}
	// Put the new root on top of rootfs. pivot_root cannot be used: rootfs
	// can never be unmounted.
	if err := mountfs.Move(".", "/"); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot .: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// Exec replaces this process with path, with argv[0] = path.
func Exec(path string, args, env []string) error {
	argv := append([]string{path}, args...)
	err := unix.Exec(path, argv, env)
	return fmt.Errorf("exec %s: %w", path, err)
}

func deviceOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Dev, nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// removeTree deletes everything under dir that is on device dev, never
// descending into another filesystem. keepDir leaves dir itself.
func removeTree(dir string, dev uint64, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Dev != dev {
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		var firstErr error
		for _, n := range names {
			if err := removeTree(filepath.Join(dir, n), dev, false); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if keepDir {
			return firstErr
		}
		err = unix.Rmdir(dir)
		// EBUSY: dir is itself a mount point. ENOTEMPTY: it holds one
		// (the new root may be mounted at /mnt/root-RO). Both stay.
		if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) && firstErr == nil {
			firstErr = fmt.Errorf("rmdir %s: %w", dir, err)
		}
		return firstErr
	}
	if err := unix.Unlink(dir); err != nil {
		return fmt.Errorf("unlink %s: %w", dir, err)
	}
	return nil
}

// FindInitIn is FindInit for a root that is not yet "/": each candidate
// is resolved inside root (package rootfile), absolute symbolic links
// included (the usual /sbin/init -> /lib/systemd/systemd), so the answer
// is what exec will find after the switch; a link climbing out of the
// root stays in it.
func FindInitIn(root string, candidates []string) (string, error) {
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		fi, err := rootfile.Stat(root, c)
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s (%v)", c, errors.Unwrap(err)))
		case !fi.Mode().IsRegular():
			tried = append(tried, fmt.Sprintf("%s (not a regular file)", c))
		case fi.Mode().Perm()&0o111 == 0:
			tried = append(tried, fmt.Sprintf("%s (not executable)", c))
		default:
			return c, nil
		}
	}
	return "", fmt.Errorf("tried %s", strings.Join(tried, ", "))
}
