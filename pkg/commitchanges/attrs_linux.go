package commitchanges

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

func tempName(dir, base string) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if len(base) > 200 {
		base = base[:200]
	}
	return filepath.Join(dir, TempPrefix+base+"-"+hex.EncodeToString(b)), nil
}

// copyAttrs gives dst src's owner, mode, xattrs (other than overlayfs's)
// and times. With clearExtra, xattrs dst has and src lacks are removed.
func copyAttrs(src, dst string, st os.FileInfo, clearExtra bool) error {
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
		return err
	}
	if st.Mode()&os.ModeSymlink == 0 {
		// After chown, which clears set-user-ID bits.
		if err := unix.Chmod(dst, sys.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	want, err := overlaydiff.Xattrs(src)
	if err != nil {
		return err
	}
	if clearExtra {
		have, err := overlaydiff.Xattrs(dst)
		if err != nil {
			return err
		}
		for n := range have {
			if _, ok := want[n]; !ok {
				if err := unix.Lremovexattr(dst, n); err != nil {
					return &os.PathError{Op: "removexattr " + n, Path: dst, Err: err}
				}
			}
		}
	}
	for _, n := range overlaydiff.XattrNames(want) {
		if err := unix.Lsetxattr(dst, n, want[n], 0); err != nil {
			return &os.PathError{Op: "setxattr " + n, Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(sys.Atim.Nano()), unix.NsecToTimespec(sys.Mtim.Nano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

func mknodLike(p string, st os.FileInfo) error {
	sys := st.Sys().(*syscall.Stat_t)
	if err := unix.Mknod(p, sys.Mode, int(sys.Rdev)); err != nil {
		return &os.PathError{Op: "mknod", Path: p, Err: err}
	}
	return nil
}
