// Package rootfile is the one way the init reads files of the root it is
// about to boot (/etc/fstab, /etc/hostname, the init candidates, any
// configuration): the root is not yet "/", and its files are input from
// the card, so they are treated as hostile.
//
//   - Paths are resolved inside the root: absolute symbolic links are
//     followed as if the root were "/" (/etc/fstab -> /etc/fstab.real
//     finds the root's fstab.real), and ".." never climbs out of it
//     (../../../../proc/self/mounts stays in the root). openat2(2) with
//     RESOLVE_IN_ROOT does this in the kernel; on a kernel without
//     openat2 (ENOSYS, before 5.6) a resolver in Go walks the links the
//     same way, and the last step opens with O_NOFOLLOW.
//   - Only regular files are read. A FIFO (which would block the reader
//     for ever), a device node (/dev/zero never ends), a socket or a
//     folder is refused with ErrNotRegular, without opening it for
//     reading: the type is checked on an O_PATH handle first, and the
//     file is then opened with O_NONBLOCK and checked again.
//   - Reads are capped: ReadFile returns ErrTooLarge past its limit, so
//     a huge file cannot exhaust the init's memory.
//
// The caller decides the safe default when a read is refused; every
// refusal error names the path and why.
package rootfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrNotRegular: the path names a FIFO, device, socket or folder.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than the read limit.
	ErrTooLarge = errors.New("larger than the read limit")
)

// DefaultLimit caps ReadFile when the caller gives no limit: far above
// any fstab or hostname, far below what would strain a small device.
const DefaultLimit = 1 << 20

// resolveFlags keep a resolution inside the root; magic links
// (/proc/self/fd/N) would leave it.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2 is the syscall; a test replaces it to take the fallback path.
var openat2 = unix.Openat2

// Stat returns what path names inside root, links followed inside root,
// without opening it for reading.
func Stat(root, path string) (fs.FileInfo, error) {
	f, err := openPath(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Open opens path inside root for reading. It refuses anything but a
// regular file with ErrNotRegular. The file is opened O_NONBLOCK.
func Open(root, path string) (*os.File, error) {
	p, err := openPath(root, path)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	before, err := p.Stat()
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, notRegular(path, before.Mode())
	}
	f, err := open(root, path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err == nil && (!after.Mode().IsRegular() || !os.SameFile(before, after)) {
		err = fmt.Errorf("%s: changed while being opened: %w", path, ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads path inside root, at most limit bytes (DefaultLimit
// when limit <= 0); a longer file is refused with ErrTooLarge.
func ReadFile(root, path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	f, err := Open(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

func notRegular(path string, m fs.FileMode) error {
	kind := "a folder"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeSymlink != 0:
		kind = "a symbolic link"
	case !m.IsDir():
		kind = "not a file (" + m.Type().String() + ")"
	}
	return fmt.Errorf("%s is %s: %w", path, kind, ErrNotRegular)
}

func openPath(root, path string) (*os.File, error) {
	return open(root, path, unix.O_PATH|unix.O_CLOEXEC)
}

// open opens path inside root with flags, by openat2 or the fallback.
func open(root, path string, flags int) (*os.File, error) {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	fd, err := openat2(dir, rel, &unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags})
	if errors.Is(err, unix.ENOSYS) {
		return openFallback(root, path, flags)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open (inside " + root + ")", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// openFallback is open for kernels without openat2: ResolveIn walks the
// links inside root, and O_NOFOLLOW keeps the kernel from following a
// link put in place after the walk.
func openFallback(root, path string, flags int) (*os.File, error) {
	p, err := ResolveIn(root, path)
	if err != nil {
		return nil, &os.PathError{Op: "resolve (inside " + root + ")", Path: path, Err: err}
	}
	fd, err := unix.Open(p, flags|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open (inside " + root + ")", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// ResolveIn resolves path as if root were "/": symbolic links, absolute
// or relative, never lead outside root. It returns the host path. It is
// the fallback for kernels without openat2; the kernel's
// RESOLVE_IN_ROOT does the same.
func ResolveIn(root, path string) (string, error) {
	const maxLinks = 40
	links := 0
	parts := strings.Split(filepath.Clean("/"+path), "/")[1:]
	cur := "/"
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		if p == "" || p == "." {
			continue
		}
		if p == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, p)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			if len(parts) == 0 {
				return filepath.Join(root, next), nil // let the caller's open say why
			}
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxLinks {
			return "", unix.ELOOP
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, cur), nil
}
