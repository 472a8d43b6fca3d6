// Package modload is the init's side of kernel modules: the load-order
// file the initramfs builder writes, and loading a module with
// finit_module(2). It is kept apart from package kmod (the builder's
// dependency resolution, ELF and decompression code) so that none of that
// is linked into PID 1.
package modload

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// OrderFile is where the initramfs keeps the module load order.
//
// The format is text, one module per line: the module's absolute path
// inside the initramfs, then optionally a space and the module
// parameters ("name=value ..." as for insmod). A line may start with
// "rootfs=TYPE,TYPE " before the path: that module is only wanted when
// the root's filesystem is one of those types (a filesystem's module and
// the modules only it needs), so the init loads it after reading the
// root's superblock. Empty lines and lines whose first non-blank
// character is '#' are ignored.
const OrderFile = "/etc/ofsroot/modules.order"

// Entry is one line of an order file.
type Entry struct {
	// Path is the module file's absolute path inside the initramfs.
	Path string
	// Params are the module parameters, "" for none.
	Params string
	// RootFS, if not empty, are the root filesystem types this module is
	// wanted for; empty means always.
	RootFS []string
}

// rootFSPrefix starts the optional first word of a line.
const rootFSPrefix = "rootfs="

// WantedFor says whether the entry is wanted for a root of filesystem
// type fstype; "" (unknown) wants every entry.
func (e Entry) WantedFor(fstype string) bool {
	if len(e.RootFS) == 0 || fstype == "" {
		return true
	}
	for _, t := range e.RootFS {
		if t == fstype {
			return true
		}
	}
	return false
}

// Name returns the module name of the entry, e.g. "ext4".
func (e Entry) Name() string { return NameFromPath(e.Path) }

// NameFromPath returns the module name of a module file:
// ".../crc32c-intel.ko" (or .ko.xz, .ko.zst, .ko.gz) is crc32c_intel.
func NameFromPath(p string) string {
	base := p[strings.LastIndex(p, "/")+1:]
	for _, z := range []string{".xz", ".zst", ".gz"} {
		if b, ok := strings.CutSuffix(base, ".ko"+z); ok {
			base = b
		}
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// String returns the entry as a line of the order file (no newline).
func (e Entry) String() string {
	s := e.Path
	if len(e.RootFS) > 0 {
		s = rootFSPrefix + strings.Join(e.RootFS, ",") + " " + s
	}
	if e.Params == "" {
		return s
	}
	return s + " " + e.Params
}

// ParseOrder reads an order file. It fails on a line whose path is not
// absolute, naming the line.
func ParseOrder(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var rootFS []string
		if strings.HasPrefix(text, rootFSPrefix) {
			word, rest := text, ""
			if i := strings.IndexAny(text, " \t"); i >= 0 {
				word, rest = text[:i], strings.TrimSpace(text[i+1:])
			}
			for _, t := range strings.Split(word[len(rootFSPrefix):], ",") {
				if t == "" {
					return nil, fmt.Errorf("module order line %d: empty filesystem type in %q", line, word)
				}
				rootFS = append(rootFS, t)
			}
			text = rest
		}
		p, params := text, ""
		if i := strings.IndexAny(text, " \t"); i >= 0 {
			p, params = text[:i], strings.TrimSpace(text[i+1:])
		}
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("module order line %d: %q is not an absolute path", line, p)
		}
		out = append(out, Entry{Path: p, Params: params, RootFS: rootFS})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("module order: %w", err)
	}
	return out, nil
}

// FormatOrder writes entries as an order file that ParseOrder reads
// back, after a comment saying what the file is.
func FormatOrder(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Kernel modules the ofsroot init loads, in this order.")
	fmt.Fprintln(bw, "# One per line: path inside the initramfs, then optional parameters.")
	for _, e := range entries {
		switch {
		case !strings.HasPrefix(e.Path, "/"):
			return fmt.Errorf("module order: path %q is not absolute", e.Path)
		case strings.ContainsAny(e.Path, " \t\r\n"):
			return fmt.Errorf("module order: path %q contains white space", e.Path)
		case strings.ContainsAny(e.Params, "\r\n"):
			return fmt.Errorf("module order: parameters of %s contain a line break", e.Path)
		}
		for _, t := range e.RootFS {
			if t == "" || strings.ContainsAny(t, ", \t\r\n") {
				return fmt.Errorf("module order: filesystem type %q of %s", t, e.Path)
			}
		}
		fmt.Fprintln(bw, Entry{Path: e.Path, Params: strings.TrimSpace(e.Params), RootFS: e.RootFS}.String())
	}
	return bw.Flush()
}
