package initramfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ofsroot/ofsroot/pkg/atomicfile"
)

// archive collects the records of the cpio archive.
type archive struct {
	mtime   uint64
	records map[string]cpio.Record
}

func newArchive(epoch int64) *archive {
	return &archive{mtime: uint64(epoch), records: map[string]cpio.Record{}}
}

// add adds a record and the folders above it.
func (a *archive) add(r cpio.Record) {
	r.Name = cpio.Normalize(r.Name)
	for d := path.Dir(r.Name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.records[d]; !ok {
			a.records[d] = cpio.Directory(d, 0o755)
		}
	}
	a.records[r.Name] = r
}

func (a *archive) dir(name string) { a.add(cpio.Directory(name, 0o755)) }

func (a *archive) file(name string, perm uint64, data []byte) {
	a.add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
}

// writeTo writes the records sorted by name (so every folder precedes
// what it holds), owned by root, stamped with the archive's time,
// numbered from 1, then the trailer. It returns the bytes written.
func (a *archive) writeTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.records))
	for n := range a.records {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countingWriter{w: w}
	rw := cpio.Newc.Writer(cw)
	for i, n := range names {
		r := a.records[n]
		r.Ino = uint64(i + 1)
		r.UID, r.GID = 0, 0
		r.MTime = a.mtime
		r.Dev, r.Major, r.Minor = 0, 0, 0
		// The kernel treats regular files with more than one link as
		// hard links to match up: say 1.
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := rw.WriteRecord(r); err != nil {
			return cw.n, fmt.Errorf("archive entry %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeAtomic writes a file through fill (atomicfile.Write: a temporary
// file beside name, synced and renamed into place), recording its size
// and SHA-256 in res.
func writeAtomic(name string, fill func(io.Writer) error, res *Result) error {
	h := sha256.New()
	var n int64
	err := atomicfile.Write(name, 0o644, func(w io.Writer) error {
		cw := &countingWriter{w: io.MultiWriter(w, h)}
		err := fill(cw)
		n = cw.n
		return err
	})
	if err != nil {
		return err
	}
	res.CompressedBytes = n
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
