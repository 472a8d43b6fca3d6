// Package commitchanges keeps chosen changes: it copies them from an
// overlay's upper layer (the RAM layer) into its lower layer (the real
// root), like Alpine's lbu commit but for chosen paths.
//
// New and changed files, symlinks and device nodes are written to a
// temporary name in the same folder (".ofsctl-commit-*"), given the
// upper entry's owner, mode, xattrs and times, fsynced, renamed over
// the old name, and the folder fsynced: after a power cut at any moment
// each file is either the old or the new one, never torn (at worst a
// temporary file is left behind, removed by the next commit of that
// file). Folders are created or have their
// owner, mode and xattrs set in place; deletions (whiteouts) and the
// entries an opaque folder hides are removed. An entry that changes type
// (a file becoming a folder) is removed before the new one is made: for
// that moment neither exists. Hard links are not kept (each name gets
// its own copy); overlayfs's own xattrs are never copied.
//
// The writer is its own, not package atomicfile's (whose folder sync it
// shares): the entry written may be a symlink or a device node, not only
// a file; it takes the upper entry's owner, xattrs and times; and its
// temporary name (TempPrefix) is one a later commit knows to remove.
//
// Apply works on any two folders; Commit makes the real root writable
// only for the moment it takes, in a private mount namespace (see
// package maintenance).
package commitchanges

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/ofsroot/ofsroot/pkg/atomicfile"
	"github.com/ofsroot/ofsroot/pkg/maintenance"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

// TempPrefix starts the name of every temporary file Apply writes.
const TempPrefix = ".ofsctl-commit-"

// Options is one commit.
type Options struct {
	// Lower is the real root's mount point, Upper the RAM layer's upper
	// folder.
	Lower, Upper string
	// Paths are the paths (as seen from /) whose changes are kept; the
	// folders they need that the real root lacks come along.
	Paths []string
	// Ignore leaves paths out, as overlaydiff.Options.Ignore.
	Ignore []string
	// DryRun only returns what would change.
	DryRun bool
}

// Plan returns the changes Commit would apply, in the order it would.
func Plan(o Options) ([]overlaydiff.Change, error) {
	if len(o.Paths) == 0 {
		return nil, errors.New("no paths to commit given: name the files or folders to keep")
	}
	all, err := overlaydiff.Diff(o.Lower, o.Upper, overlaydiff.Options{Ignore: o.Ignore})
	if err != nil {
		return nil, err
	}
	byPath := map[string]overlaydiff.Change{}
	for _, c := range all {
		if c.Kind != overlaydiff.Opaque {
			byPath[c.Path] = c
		}
	}
	picked := map[string]overlaydiff.Change{}
	var opaque []overlaydiff.Change
	for _, c := range all {
		for _, p := range o.Paths {
			p = overlaydiff.Clean(p)
			if !overlaydiff.Under(c.Path, p) {
				continue
			}
			if c.Kind == overlaydiff.Opaque {
				opaque = append(opaque, c)
				break
			}
			picked[c.Path] = c
			// Folders the change needs: new ones, or ones replacing
			// something else.
			for a := path.Dir(c.Path); a != "/"; a = path.Dir(a) {
				if ac, ok := byPath[a]; ok && ac.Type == overlaydiff.Dir && (ac.Kind == overlaydiff.Added || hasWhat(ac, overlaydiff.WhatType)) {
					picked[a] = ac
				}
			}
			break
		}
	}
	for _, p := range o.Paths {
		if err := exists(o.Lower, o.Upper, overlaydiff.Clean(p)); err != nil {
			return nil, err
		}
	}
	var out []overlaydiff.Change
	for _, c := range picked {
		out = append(out, c)
	}
	out = append(out, opaque...)
	sort.SliceStable(out, func(i, j int) bool { return overlaydiff.Less(out[i].Path, out[j].Path) })
	return out, nil
}

// ErrNoSuchPath is a path to commit that is neither in the real root nor
// in the RAM layer: most likely a typo. It wraps os.ErrNotExist.
type ErrNoSuchPath struct{ Path string }

func (e *ErrNoSuchPath) Error() string {
	return fmt.Sprintf("%s is neither in the RAM layer nor in the real root: nothing to keep there (is it mistyped? ofsctl diff lists what changed)", e.Path)
}
func (e *ErrNoSuchPath) Unwrap() error { return os.ErrNotExist }

// exists says whether p is in the upper layer (a change, a whiteout) or
// in the lower one (unchanged, or deleted or hidden by a change above
// it, whose change Plan picks).
func exists(lower, upper, p string) error {
	for _, layer := range []string{upper, lower} {
		if _, err := os.Lstat(filepath.Join(layer, p)); err == nil {
			return nil
		}
	}
	return &ErrNoSuchPath{Path: p}
}

func hasWhat(c overlaydiff.Change, w string) bool {
	for _, x := range c.What {
		if x == w {
			return true
		}
	}
	return false
}

// Commit applies Plan(o) to the real root at o.Lower, made writable for
// the time it takes in a private mount namespace, then read-only again.
// With o.DryRun it only returns the plan.
//
// Side effects: see maintenance.Writable; writes o.Lower.
func Commit(o Options) ([]overlaydiff.Change, error) {
	plan, err := Plan(o)
	if err != nil || o.DryRun || len(plan) == 0 {
		return plan, err
	}
	err = maintenance.Writable(o.Lower, nil, func() error { return Apply(o.Lower, o.Upper, plan) })
	return plan, err
}

// Error is a failure to apply one change.
type Error struct {
	Change overlaydiff.Change
	Op     string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("committing %s (%s): %s: %v", e.Change.Path, e.Change.Kind, e.Op, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// crashAfterTemp, when set, makes Apply stop with an error right after
// writing the temporary file for that path: the moment a power cut
// would hurt most. Tests only.
var crashAfterTemp string

var errCrash = errors.New("simulated power cut")

// Apply makes lower hold what upper holds for each change, in order.
// lower must be writable.
func Apply(lower, upper string, changes []overlaydiff.Change) error {
	for _, c := range changes {
		if err := apply(lower, upper, c); err != nil {
			return err
		}
	}
	return nil
}

func apply(lower, upper string, c overlaydiff.Change) error {
	dst, src := filepath.Join(lower, c.Path), filepath.Join(upper, c.Path)
	fail := func(op string, err error) error { return &Error{Change: c, Op: op, Err: err} }
	switch c.Kind {
	case overlaydiff.Opaque:
		return nil // the entries it hides are listed as deletions
	case overlaydiff.Deleted:
		if err := os.RemoveAll(dst); err != nil {
			return fail("remove", err)
		}
		return fail2(atomicfile.SyncDir(filepath.Dir(dst)), fail, "fsync folder")
	}
	st, err := os.Lstat(src)
	if err != nil {
		return fail("lstat upper", err)
	}
	if hasWhat(c, overlaydiff.WhatType) {
		// Rename cannot put a file over a folder or the reverse.
		if lst, err := os.Lstat(dst); err == nil && (lst.IsDir() || st.IsDir()) {
			if err := os.RemoveAll(dst); err != nil {
				return fail("remove the old entry of another type", err)
			}
		}
	}
	if st.IsDir() {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(dst, 0o700); err != nil {
				return fail("mkdir", err)
			}
		}
		if err := copyAttrs(src, dst, st, true); err != nil {
			return fail("set owner, mode, xattrs", err)
		}
		if err := atomicfile.SyncDir(dst); err != nil {
			return fail("fsync", err)
		}
		return fail2(atomicfile.SyncDir(filepath.Dir(dst)), fail, "fsync folder")
	}
	tmp, err := tempName(filepath.Dir(dst), filepath.Base(dst))
	if err != nil {
		return fail("temporary name", err)
	}
	if err := makeTemp(src, tmp, st); err != nil {
		os.Remove(tmp)
		return fail("write "+tmp, err)
	}
	if crashAfterTemp == c.Path {
		return fail("write "+tmp, errCrash)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fail("rename", err)
	}
	// Temporary files of this name that an earlier, interrupted commit
	// left behind are of no use now.
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), TempPrefix+globEscape(filepath.Base(dst))+"-*"))
	for _, p := range stale {
		os.Remove(p)
	}
	return fail2(atomicfile.SyncDir(filepath.Dir(dst)), fail, "fsync folder")
}

func globEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '*' || c == '?' || c == '[' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func fail2(err error, fail func(string, error) error, op string) error {
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// makeTemp writes a copy of the upper entry src at tmp, with its owner,
// mode, xattrs and times, synced to disk.
func makeTemp(src, tmp string, st os.FileInfo) error {
	switch {
	case st.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := copyAttrs(src, tmp, st, false); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	case st.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, tmp); err != nil {
			return err
		}
		return copyAttrs(src, tmp, st, false)
	case st.Mode()&(os.ModeDevice|os.ModeNamedPipe) != 0:
		if err := mknodLike(tmp, st); err != nil {
			return err
		}
		if err := copyAttrs(src, tmp, st, false); err != nil {
			return err
		}
		// A node is an inode only, and syncing the folder it was made
		// in writes it. Opening it to sync it would block for ever on a
		// FIFO (no writer) and run a device's driver.
		return atomicfile.SyncDir(filepath.Dir(tmp))
	}
	return fmt.Errorf("cannot commit a %v", st.Mode().Type())
}
