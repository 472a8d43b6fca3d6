package overlaydiff

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

func typeOf(m fs.FileMode) Type {
	switch {
	case m.IsDir():
		return Dir
	case m&fs.ModeSymlink != 0:
		return Symlink
	case m&fs.ModeDevice != 0:
		return Device
	case m&fs.ModeNamedPipe != 0:
		return FIFO
	case m&fs.ModeSocket != 0:
		return Socket
	}
	return File
}

func statOf(fi fs.FileInfo) *unix.Stat_t {
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		return st
	}
	// os.Lstat gives a *syscall.Stat_t; convert field by field.
	return toUnixStat(fi)
}

// whiteout says whether the upper entry records a deletion, and in which
// form: "chardev" (a 0/0 character device) or "xattr" (an empty regular
// file carrying trusted.overlay.whiteout, as overlayfs 6.7+ accepts).
func whiteout(p string, fi fs.FileInfo) (string, error) {
	m := fi.Mode()
	if m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0 && statOf(fi).Rdev == 0 {
		return "chardev", nil
	}
	if m.IsRegular() && fi.Size() == 0 {
		if _, ok, err := getXattr(p, "trusted.overlay.whiteout"); err != nil {
			return "", err
		} else if ok {
			return "xattr", nil
		}
	}
	return "", nil
}

// IsWhiteout says whether the entry at p is an overlayfs whiteout.
func IsWhiteout(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	wo, err := whiteout(p, fi)
	return wo != "", err
}

// IsOpaque says whether the folder p is marked opaque.
func IsOpaque(p string) (bool, error) { return xattrIs(p, "trusted.overlay.opaque", "y") }

func xattrIs(p, name, want string) (bool, error) {
	v, ok, err := getXattr(p, name)
	return ok && string(v) == want, err
}

// getXattr reads one xattr without following symlinks; ok is false when
// it is not set (or the filesystem has none).
func getXattr(p, name string) ([]byte, bool, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, false, nil
		case err != nil:
			return nil, false, &Error{Op: "getxattr " + name, Path: p, Err: err}
		}
		return buf[:n], true, nil
	}
}

// OverlayPrivate says whether an xattr belongs to overlayfs itself
// (trusted.overlay.*, user.overlay.*) and so is never a change.
func OverlayPrivate(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// Xattrs returns the entry's extended attributes (not following
// symlinks), leaving out overlayfs's own.
func Xattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Op: "listxattr", Path: p, Err: err}
	}
	buf := make([]byte, size+64)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, &Error{Op: "listxattr", Path: p, Err: err}
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || OverlayPrivate(name) {
			continue
		}
		v, ok, err := getXattr(p, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out[name] = v
		}
	}
	return out, nil
}

// XattrNames returns the sorted names of x.
func XattrNames(x map[string][]byte) []string {
	var names []string
	for n := range x {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func sameContent(a, b string, sa, sb int64) (bool, error) {
	if sa != sb {
		return false, nil
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, &Error{Op: "open", Path: a, Err: err}
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, &Error{Op: "open", Path: b, Err: err}
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, &Error{Op: "read", Path: a, Err: ea}
		}
		if eb != nil {
			return false, &Error{Op: "read", Path: b, Err: eb}
		}
	}
}
