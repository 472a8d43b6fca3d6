// Package atomicfile replaces a file so that a reader, or the disk after
// a power cut, finds the old content or the new, never a mix or an empty
// file: the new content goes to a temporary file in the same folder
// (".NAME.tmp-RANDOM", created exclusively, so never an existing file,
// link or device node), which is given its mode, synced, renamed over
// the name, and the folder is synced so that the rename lasts.
//
// WriteIn does this inside an *os.Root: no symbolic link or ".." in the
// name leads outside it. The init writes into the root it boots with it,
// whose files are hostile input (see package rootfile).
//
// The file is owned by the caller; an existing file's owner, mode and
// extended attributes are not carried over (the callers set the mode
// they need).
package atomicfile

import (
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
)

// Write replaces the file at name with what fill writes, with mode perm
// (see the package comment). On an error name is unchanged and the
// temporary file removed.
func Write(name string, perm fs.FileMode, fill func(io.Writer) error) error {
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteIn(root, filepath.Base(name), perm, fill)
}

// WriteFile is Write of data.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	return Write(name, perm, writeData(data))
}

// WriteFileIn is WriteIn of data.
func WriteFileIn(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	return WriteIn(root, name, perm, writeData(data))
}

func writeData(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// WriteIn is Write of name inside root: the folder name is in must be
// reachable inside root (links are followed inside root only; one
// leading out is an error, and nothing is written).
func WriteIn(root *os.Root, name string, perm fs.FileMode, fill func(io.Writer) error) (err error) {
	name = path.Clean(filepath.ToSlash(name))
	dir, base := path.Split(name)
	dir = path.Clean("./" + dir)
	f, tmp, err := createTemp(root, dir, base, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	// fchmod on the handle: the umask left out bits of perm.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = root.Rename(tmp, name); err != nil {
		return err
	}
	return syncIn(root, dir)
}

// createTemp creates ".BASE.tmp-RANDOM" in dir inside root, exclusively.
func createTemp(root *os.Root, dir, base string, perm fs.FileMode) (*os.File, string, error) {
	for range 10 {
		tmp := path.Join(dir, "."+base+".tmp-"+randomSuffix())
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm&fs.ModePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", &fs.PathError{Op: "create a temporary file", Path: path.Join(root.Name(), dir), Err: fs.ErrExist}
}

// randomSuffix is 12 hex digits from the runtime's generator, seeded by
// the kernel at exec. Not crypto/rand: that blocks until the kernel's
// random pool is initialised, which under the init took a second in
// QEMU and can take far longer on a board without a hardware generator.
// The name need not be secret: it is created exclusively and never
// followed, so a planted name only costs a retry.
func randomSuffix() string {
	var r [8]byte
	u := rand.Uint64()
	for i := range r {
		r[i] = byte(u >> (8 * i))
	}
	return hex.EncodeToString(r[:6])
}

func syncIn(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SyncDir syncs the folder dir, so that the renames and removals in it
// last through a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
