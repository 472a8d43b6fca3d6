// Package debpkg unpacks Debian binary packages (.deb) in pure Go, the
// way `dpkg -x` does: the ar archive's data.tar member, compressed with
// xz, zstd, gzip or bzip2 or not at all, is written under a folder with
// its directories, regular files, symbolic links and hard links, and
// with their permission bits and modification times.
//
// Every path is confined to the destination folder: names with ".."
// components or absolute names are refused, and no entry is written
// through a symbolic link that leads out of the folder (os.Root).
package debpkg

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// arMagic starts every ar archive, and so every .deb.
const arMagic = "!<arch>\n"

// Extract writes the files of the .deb at debPath under destDir, which is
// created if missing. Existing files of the same names are replaced.
//
// Side effects: creates files, folders and links under destDir, sets
// their modes and modification times. Owners are left as the caller's.
func Extract(debPath, destDir string) error {
	return ExtractFiltered(debPath, destDir, nil)
}

// ExtractFiltered is Extract for the entries keep accepts. keep gets the
// cleaned slash-separated name relative to the package root, e.g.
// "lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko"; a nil keep keeps
// everything. Folders leading to a kept entry are created whether or not
// keep accepts them, with the package's mode when the package lists them.
// A kept hard link whose target keep skipped is an error.
func ExtractFiltered(debPath, destDir string, keep func(name string) bool) error {
	f, err := os.Open(debPath)
	if err != nil {
		return err
	}
	defer f.Close()
	member, data, err := dataMember(f)
	if err != nil {
		return fmt.Errorf("%s: %w", debPath, err)
	}
	tr, closeTar, err := decompress(member, data)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", debPath, member, err)
	}
	defer closeTar()
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, keep: keep, dirs: map[string]dirMeta{}}
	if err := x.run(tar.NewReader(tr)); err != nil {
		return fmt.Errorf("%s: %s: %w", debPath, member, err)
	}
	return nil
}

// dataMember finds the data.tar member of the ar archive in r and
// returns its name and contents.
func dataMember(r io.Reader) (string, io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return "", nil, errors.New("not a Debian package: no ar archive header (!<arch>)")
	}
	var seen []string
	for {
		name, size, err := readArHeader(br)
		if err == io.EOF {
			return "", nil, fmt.Errorf("no data.tar member in the package (members: %s)", strings.Join(seen, ", "))
		}
		if err != nil {
			return "", nil, err
		}
		seen = append(seen, name)
		if strings.HasPrefix(name, "data.tar") {
			return name, io.LimitReader(br, size), nil
		}
		// Members are padded to an even size.
		if _, err := io.CopyN(io.Discard, br, size+size%2); err != nil {
			return "", nil, fmt.Errorf("ar member %s: %w", name, err)
		}
	}
}

// readArHeader reads one 60-byte ar member header.
func readArHeader(r io.Reader) (name string, size int64, err error) {
	var h [60]byte
	n, err := io.ReadFull(r, h[:])
	if n == 0 && err == io.EOF {
		return "", 0, io.EOF
	}
	if err != nil {
		return "", 0, fmt.Errorf("truncated ar member header: %w", err)
	}
	if string(h[58:60]) != "`\n" {
		return "", 0, errors.New("corrupt ar member header (no `\\n terminator)")
	}
	name = strings.TrimRight(string(h[0:16]), " ")
	// GNU ar ends short names with '/'.
	name = strings.TrimSuffix(name, "/")
	size, err = strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size %q", name, strings.TrimSpace(string(h[48:58])))
	}
	return name, size, nil
}

// decompress returns the tar stream of a data.tar[.EXT] member.
func decompress(member string, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	switch ext := strings.TrimPrefix(member, "data.tar"); ext {
	case "":
		return r, nop, nil
	case ".gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case ".xz":
		z, err := xz.NewReader(bufio.NewReaderSize(r, 1<<16))
		if err != nil {
			return nil, nil, err
		}
		return z, nop, nil
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	case ".bz2":
		return bzip2.NewReader(r), nop, nil
	default:
		return nil, nil, fmt.Errorf("unsupported compression %q (known: none, .gz, .xz, .zst, .bz2)", ext)
	}
}

// dirMeta is what a folder gets once everything inside it is written:
// a read-only folder would otherwise refuse its own contents.
type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

type extractor struct {
	root *os.Root
	keep func(string) bool
	dirs map[string]dirMeta
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name, err := CleanName(h.Name)
		if err != nil {
			return err
		}
		if name == "." {
			// The package root is destDir itself: like dpkg -x,
			// give it the packaged mode and time.
			if h.Typeflag == tar.TypeDir {
				x.dirs["."] = dirMeta{mode: h.FileInfo().Mode().Perm() | modeBits(h), mtime: h.ModTime}
			}
			continue
		}
		if x.keep != nil && h.Typeflag != tar.TypeDir && !x.keep(name) {
			continue
		}
		if x.keep != nil && h.Typeflag == tar.TypeDir && !x.keep(name) {
			// Remember the mode in case a kept entry lives below.
			x.dirs[name] = dirMeta{mode: h.FileInfo().Mode().Perm() | modeBits(h), mtime: h.ModTime}
			continue
		}
		if err := x.entry(h, name, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return x.finishDirs()
}

// CleanName turns a tar entry name ("./usr/bin/x") into a clean
// relative name ("usr/bin/x"), refusing absolute names and ".."
// components. The package root itself is ".".
func CleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q in package refused", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("path %q leaves the package root: refused", name)
		}
	}
	return path.Clean(name), nil
}

// modeBits returns the setuid, setgid and sticky bits of a tar header as
// fs.FileMode bits.
func modeBits(h *tar.Header) fs.FileMode {
	var m fs.FileMode
	if h.Mode&04000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&02000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&01000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (x *extractor) entry(h *tar.Header, name string, r io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		// Parents the package lists get their own modes at the end
		// (finishDirs), even those keep skipped.
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	perm := h.FileInfo().Mode().Perm() | modeBits(h)
	switch h.Typeflag {
	case tar.TypeDir:
		fi, err := x.root.Lstat(name)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			if err := x.root.Remove(name); err != nil {
				return err
			}
			fallthrough
		default:
			if err := x.root.Mkdir(name, 0o755); err != nil {
				return err
			}
		}
		x.dirs[name] = dirMeta{mode: perm, mtime: h.ModTime}
		return nil
	case tar.TypeReg: // the reader reports old-style TypeRegA entries as TypeReg
		if err := x.removeNonDir(name); err != nil {
			return err
		}
		f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(perm); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return x.root.Chtimes(name, h.ModTime, h.ModTime)
	case tar.TypeSymlink:
		if err := x.removeNonDir(name); err != nil {
			return err
		}
		// The target is stored as it is, absolute or not: it is
		// only text here. os.Root refuses to write through it later.
		return x.root.Symlink(h.Linkname, name)
	case tar.TypeLink:
		target, err := CleanName(h.Linkname)
		if err != nil {
			return err
		}
		if err := x.removeNonDir(name); err != nil {
			return err
		}
		return x.root.Link(target, name)
	default:
		return fmt.Errorf("entry type %q not supported (Debian packages carry no device nodes or fifos)", string(h.Typeflag))
	}
}

// removeNonDir removes whatever non-folder is at name, so that a link or
// file from an earlier entry is replaced instead of written through.
func (x *extractor) removeNonDir(name string) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("a folder of that name exists")
	}
	return x.root.Remove(name)
}

// finishDirs gives every folder its packaged mode and time, deepest
// first so that setting a parent's time is not undone by its children.
func (x *extractor) finishDirs() error {
	names := make([]string, 0, len(x.dirs))
	for n := range x.dirs {
		if _, err := x.root.Lstat(n); err != nil {
			continue // only remembered, never created (keep said no)
		}
		names = append(names, n)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		m := x.dirs[n]
		if err := x.root.Chmod(n, m.mode); err != nil {
			return err
		}
		if err := x.root.Chtimes(n, m.mtime, m.mtime); err != nil {
			return err
		}
	}
	return nil
}
