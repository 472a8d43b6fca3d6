// Package overlaydiff lists what an overlayfs upper layer holds compared
// with its lower layer: files and folders added, changed (content, mode,
// owner, extended attributes, symlink target, device number, type),
// deleted (whiteouts, in both the character-device-0/0 form and the
// trusted.overlay.whiteout xattr form) and opaque folders
// (trusted.overlay.opaque=y).
//
// It is pure over two folder paths: it reads both trees and changes
// nothing, so it serves ofsctl diff on a protected root (lower
// /mnt/root-RO, upper /mnt/root-RW/upper) as well as any other pair of
// layers, such as a sandbox instance's. The result is JSON-able.
//
// The comparison is of the merged view against the lower layer: a file
// copied up but left as it was (same content, mode, owner and xattrs) is
// not a change; time stamps are not compared. The overlay's own xattrs
// (trusted.overlay.* and user.overlay.*) are never compared. Metacopy and
// redirect_dir layers are not understood: a metacopy file is compared by
// its (empty) upper data.
package overlaydiff

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what happened to a path.
type Kind string

const (
	Added   Kind = "added"
	Changed Kind = "changed"
	Deleted Kind = "deleted"
	// Opaque: the folder hides everything the lower layer has under it;
	// the lower entries it hides are listed as Deleted too.
	Opaque Kind = "opaque"
)

// Type is the file type of the entry in the merged view (for Deleted:
// in the lower layer).
type Type string

const (
	File    Type = "file"
	Dir     Type = "dir"
	Symlink Type = "symlink"
	Device  Type = "device" // character or block device
	FIFO    Type = "fifo"
	Socket  Type = "socket"
)

// What says which attributes of a changed entry differ.
const (
	WhatType    = "type"
	WhatContent = "content"
	WhatMode    = "mode"
	WhatOwner   = "owner"
	WhatXattrs  = "xattrs"
	WhatTarget  = "target" // symlink target
	WhatDevice  = "device" // device number
)

// Change is one difference. Path is absolute within the layers ("/etc/fstab").
type Change struct {
	Path string   `json:"path"`
	Kind Kind     `json:"kind"`
	Type Type     `json:"type"`
	What []string `json:"what,omitempty"` // for Changed
	// Whiteout tells how a deletion is recorded in the upper layer:
	// "chardev" (0/0 device) or "xattr"; empty for deletions under an
	// opaque folder.
	Whiteout string `json:"whiteout,omitempty"`
}

// String is the one-line form ofsctl diff prints: a letter (A, M, D, O),
// the path, and for changes what changed.
func (c Change) String() string {
	letter := map[Kind]string{Added: "A", Changed: "M", Deleted: "D", Opaque: "O"}[c.Kind]
	p := c.Path
	if c.Type == Dir && p != "/" {
		p += "/"
	}
	s := letter + " " + p
	if len(c.What) > 0 {
		s += " (" + strings.Join(c.What, ", ") + ")"
	}
	return s
}

// Options narrows a diff.
type Options struct {
	// Paths limits the result to these paths and what is under them
	// ("/etc"); empty means the whole tree.
	Paths []string
	// Ignore lists paths whose entries (and everything under them) are
	// left out, such as a protected root's own layer mount points.
	Ignore []string
}

// Error is a failure to read one entry of a layer.
type Error struct {
	Op   string // "lstat", "readdir", "getxattr", "read", ...
	Path string // host path
	Err  error
}

func (e *Error) Error() string {
	err := e.Err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Path, err)
}
func (e *Error) Unwrap() error { return e.Err }

// Diff compares the upper layer folder with the lower layer folder and
// returns the changes sorted by path. It only reads.
func Diff(lower, upper string, o Options) ([]Change, error) {
	d := &differ{lower: lower, upper: upper, o: o}
	for i, p := range d.o.Paths {
		d.o.Paths[i] = Clean(p)
	}
	for i, p := range d.o.Ignore {
		d.o.Ignore[i] = Clean(p)
	}
	if _, err := os.Lstat(upper); err != nil {
		return nil, &Error{Op: "lstat", Path: upper, Err: err}
	}
	if _, err := os.Lstat(lower); err != nil {
		return nil, &Error{Op: "lstat", Path: lower, Err: err}
	}
	if err := d.walkDir("/", false); err != nil {
		return nil, err
	}
	sort.Slice(d.out, func(i, j int) bool { return Less(d.out[i].Path, d.out[j].Path) })
	return d.out, nil
}

// Clean makes p an absolute, clean path ("etc/" -> "/etc").
func Clean(p string) string { return path.Clean("/" + p) }

// Less orders paths so that a folder comes right before what it holds
// ("/a", "/a/b", "/a-b"), the order changes must be applied in.
func Less(a, b string) bool {
	return strings.Replace(a, "/", "\x00", -1) < strings.Replace(b, "/", "\x00", -1)
}

// Under says whether p is root or inside it.
func Under(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

type differ struct {
	lower, upper string
	o            Options
	out          []Change
}

// scope says whether rel is reported (in), and whether anything under it
// may be (descend).
func (d *differ) scope(rel string) (in, descend bool) {
	for _, ig := range d.o.Ignore {
		if Under(rel, ig) {
			return false, false
		}
	}
	if len(d.o.Paths) == 0 {
		return true, true
	}
	for _, p := range d.o.Paths {
		if Under(rel, p) {
			return true, true
		}
		if Under(p, rel) {
			descend = true
		}
	}
	return false, descend
}

func (d *differ) add(c Change) {
	if in, _ := d.scope(c.Path); in {
		d.out = append(d.out, c)
	}
}

// walkDir compares the upper folder rel with the lower one. lowerGone
// says the lower side is hidden (an ancestor is new or replaced), so
// everything here is added.
func (d *differ) walkDir(rel string, lowerGone bool) error {
	uDir := filepath.Join(d.upper, rel)
	ents, err := os.ReadDir(uDir)
	if err != nil {
		return &Error{Op: "readdir", Path: uDir, Err: err}
	}
	inUpper := map[string]bool{}
	for _, e := range ents {
		inUpper[e.Name()] = true
		child := path.Join(rel, e.Name())
		if _, descend := d.scope(child); !descend {
			continue
		}
		if err := d.entry(child, lowerGone); err != nil {
			return err
		}
	}
	// An opaque folder over a lower folder hides the lower's entries.
	if rel == "/" || lowerGone {
		return nil
	}
	opaque, err := xattrIs(uDir, "trusted.overlay.opaque", "y")
	if err != nil {
		return err
	}
	if !opaque {
		return nil
	}
	lDir := filepath.Join(d.lower, rel)
	if st, err := os.Lstat(lDir); err != nil || !st.IsDir() {
		return nil
	}
	lents, err := os.ReadDir(lDir)
	if err != nil {
		return &Error{Op: "readdir", Path: lDir, Err: err}
	}
	for _, e := range lents {
		if inUpper[e.Name()] {
			continue
		}
		child := path.Join(rel, e.Name())
		if _, descend := d.scope(child); !descend {
			continue
		}
		d.add(Change{Path: child, Kind: Deleted, Type: typeOf(e.Type())})
	}
	return nil
}

func (d *differ) entry(rel string, lowerGone bool) error {
	uPath := filepath.Join(d.upper, rel)
	ust, err := os.Lstat(uPath)
	if err != nil {
		return &Error{Op: "lstat", Path: uPath, Err: err}
	}
	var lst fs.FileInfo
	if !lowerGone {
		lst, err = os.Lstat(filepath.Join(d.lower, rel))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &Error{Op: "lstat", Path: filepath.Join(d.lower, rel), Err: err}
		}
	}
	// Whiteouts.
	if wo, err := whiteout(uPath, ust); err != nil {
		return err
	} else if wo != "" {
		if lst != nil {
			d.add(Change{Path: rel, Kind: Deleted, Type: typeOf(lst.Mode()), Whiteout: wo})
		}
		return nil
	}
	utype := typeOf(ust.Mode())
	if lst == nil {
		d.add(Change{Path: rel, Kind: Added, Type: utype})
		if utype == Dir {
			return d.walkDir(rel, true)
		}
		return nil
	}
	what, err := d.compare(rel, ust, lst)
	if err != nil {
		return err
	}
	if len(what) > 0 {
		d.add(Change{Path: rel, Kind: Changed, Type: utype, What: what})
	}
	if utype != Dir {
		return nil
	}
	replaced := typeOf(lst.Mode()) != Dir
	if !replaced {
		opaque, err := xattrIs(uPath, "trusted.overlay.opaque", "y")
		if err != nil {
			return err
		}
		if opaque {
			d.add(Change{Path: rel, Kind: Opaque, Type: Dir})
		}
	}
	return d.walkDir(rel, replaced)
}

// compare lists what differs between an upper entry and the lower entry
// at the same path.
func (d *differ) compare(rel string, u, l fs.FileInfo) ([]string, error) {
	uPath, lPath := filepath.Join(d.upper, rel), filepath.Join(d.lower, rel)
	ut, lt := typeOf(u.Mode()), typeOf(l.Mode())
	if ut != lt || (ut == Device && u.Mode()&fs.ModeCharDevice != l.Mode()&fs.ModeCharDevice) {
		return []string{WhatType}, nil
	}
	var what []string
	uStat, lStat := statOf(u), statOf(l)
	switch ut {
	case File:
		same, err := sameContent(uPath, lPath, u.Size(), l.Size())
		if err != nil {
			return nil, err
		}
		if !same {
			what = append(what, WhatContent)
		}
	case Symlink:
		a, err := os.Readlink(uPath)
		if err != nil {
			return nil, &Error{Op: "readlink", Path: uPath, Err: err}
		}
		b, err := os.Readlink(lPath)
		if err != nil {
			return nil, &Error{Op: "readlink", Path: lPath, Err: err}
		}
		if a != b {
			what = append(what, WhatTarget)
		}
	case Device:
		if uStat.Rdev != lStat.Rdev {
			what = append(what, WhatDevice)
		}
	}
	if ut != Symlink && uStat.Mode&07777 != lStat.Mode&07777 {
		what = append(what, WhatMode)
	}
	if uStat.Uid != lStat.Uid || uStat.Gid != lStat.Gid {
		what = append(what, WhatOwner)
	}
	ux, err := Xattrs(uPath)
	if err != nil {
		return nil, err
	}
	lx, err := Xattrs(lPath)
	if err != nil {
		return nil, err
	}
	if !sameXattrs(ux, lx) {
		what = append(what, WhatXattrs)
	}
	return what, nil
}
