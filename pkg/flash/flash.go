package flash

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// Compression names, as Image reports them.
const (
	Raw  = "raw"
	Gzip = "gzip"
	XZ   = "xz"
	Zstd = "zstd"
)

// Sniff names the compression of data starting with head.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Raw
}

// OpenImage opens an image file and returns its decompressed stream and
// the compression found by its magic number (not its name).
func OpenImage(path string) (io.ReadCloser, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("opening the image: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(6)
	c := Sniff(head)
	var r io.Reader
	closeAll := func() error { return f.Close() }
	switch c {
	case Raw:
		r = br
	case Gzip:
		z, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("%s: gzip: %w", path, err)
		}
		r = z
	case XZ:
		z, err := xz.NewReader(br)
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("%s: xz: %w", path, err)
		}
		r = z
	case Zstd:
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("%s: zstd: %w", path, err)
		}
		r = z
		closeAll = func() error { z.Close(); return f.Close() }
	}
	return readCloser{r, closeAll}, c, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// ImageInfo is an image's decompressed size and SHA-256.
type ImageInfo struct {
	Compression string
	Size        int64
	SHA256      string // "" until known
}

// Inspect learns an image's size: a raw image's from the file, a
// compressed one's by decompressing it once (which also checks that it
// is whole and gives its SHA-256) — before anything is written, so that
// a device too small is refused in time.
func Inspect(path string, p *Progress) (ImageInfo, error) {
	r, c, err := OpenImage(path)
	if err != nil {
		return ImageInfo{}, err
	}
	defer r.Close()
	if c == Raw {
		st, err := os.Stat(path)
		if err != nil {
			return ImageInfo{}, err
		}
		return ImageInfo{Compression: c, Size: st.Size()}, nil
	}
	h := sha256.New()
	p.Start("checking "+c+" image", 0)
	n, err := io.Copy(io.MultiWriter(h, p), r)
	p.Done()
	if err != nil {
		return ImageInfo{}, fmt.Errorf("decompressing %s (%s) failed after %d bytes: %w; the file is damaged or cut short", path, c, n, err)
	}
	return ImageInfo{Compression: c, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Options say what to flash where.
type Options struct {
	Image  string
	Target string
	// ToFile allows a target that is not a block device.
	ToFile bool
	// Confirm, if set, is asked (with a description of the target)
	// after every check passed and before anything is written; false
	// stops with ErrNotConfirmed.
	Confirm func(what string) bool
	// Progress reports; nil for none.
	Progress *Progress
	// System is where the checks look; zero means Host.
	System System
}

// ErrNotConfirmed: the user said no.
var ErrNotConfirmed = errors.New("not confirmed: nothing was written")

// Result reports a flash.
type Result struct {
	Compression string
	Bytes       int64
	SHA256      string
	// ReadBack is the SHA-256 of what was read back from the target.
	ReadBack string
	Target   *Target
}

// ErrVerify marks a read-back that differs from the image.
var ErrVerify = errors.New("verification failed")

// Flash writes o.Image to o.Target, syncs, reads it back and compares.
//
// Side effects: writes the target (a whole block device, or a file when
// o.ToFile); flushes the device's buffer cache (BLKFLSBUF) so that the
// read-back comes from the device.
func Flash(o Options) (*Result, error) {
	sys := o.System
	if sys == (System{}) {
		sys = Host
	}
	p := o.Progress
	info, err := Inspect(o.Image, p)
	if err != nil {
		return nil, err
	}
	t, err := sys.CheckTarget(o.Target, info.Size, o.ToFile)
	if err != nil {
		return nil, err
	}
	if a, err := os.Stat(o.Image); err == nil {
		if b, err := os.Stat(t.Path); err == nil && os.SameFile(a, b) {
			return nil, &Refusal{Target: t.Path, Reason: "it is the image itself", Hint: "give another file or device"}
		}
	}
	if o.Confirm != nil && !o.Confirm(describe(t, info)) {
		return nil, ErrNotConfirmed
	}

	flags := os.O_WRONLY
	if t.IsBlock {
		// O_EXCL on a block device: EBUSY while anything has it mounted.
		flags |= unix.O_EXCL
	} else {
		flags |= os.O_CREATE | os.O_TRUNC
	}
	out, err := os.OpenFile(t.Path, flags, 0o644)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, &Refusal{Target: t.Path, Reason: "the kernel says it is busy (EBUSY: mounted or held)", Hint: "unmount it and stop what uses it"}
		}
		return nil, fmt.Errorf("opening %s for writing: %w", t.Path, err)
	}
	r, _, err := OpenImage(o.Image)
	if err != nil {
		out.Close()
		return nil, err
	}
	h := sha256.New()
	p.Start("writing "+t.Path, info.Size)
	buf := make([]byte, 4<<20)
	n, err := io.CopyBuffer(out, io.TeeReader(io.TeeReader(r, h), p), buf)
	p.Done()
	r.Close()
	if err == nil && n != info.Size {
		err = fmt.Errorf("the image gave %d bytes, %d expected: did it change while flashing?", n, info.Size)
	}
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("writing %s stopped after %d of %d bytes: %w; the target now holds a partial image", t.Path, n, info.Size, err)
	}
	p.Note("syncing " + t.Path)
	if err := out.Sync(); err != nil {
		out.Close()
		return nil, fmt.Errorf("sync %s: %w; the image may not be on the device", t.Path, err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("closing %s: %w", t.Path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if info.SHA256 != "" && info.SHA256 != sum {
		return nil, fmt.Errorf("the image read %s while checking and %s while writing: did it change while flashing?", info.SHA256, sum)
	}
	res := &Result{Compression: info.Compression, Bytes: n, SHA256: sum, Target: t}
	if afterWrite != nil {
		afterWrite(t.Path)
	}
	res.ReadBack, err = readBack(t, n, p)
	if err != nil {
		return res, err
	}
	if res.ReadBack != sum {
		return res, fmt.Errorf("%w: %s reads back sha256 %s, the image is %s; the card or disk may be failing or fake", ErrVerify, t.Path, res.ReadBack, sum)
	}
	return res, nil
}

// afterWrite, when set, is called between the write (synced and closed)
// and the read-back: a test changes the device's backing file there, as
// a failing or fake card would lose what it was given. Tests only.
var afterWrite func(target string)

// readBack drops the target's cached pages, then hashes its first n
// bytes.
func readBack(t *Target, n int64, p *Progress) (string, error) {
	f, err := os.Open(t.Path)
	if err != nil {
		return "", fmt.Errorf("opening %s to read it back: %w", t.Path, err)
	}
	defer f.Close()
	// Drop the cached pages so that the read comes from the device:
	// BLKFLSBUF needs CAP_SYS_ADMIN; without it (a user in group disk)
	// FADV_DONTNEED drops the clean pages, which after the fsync is all
	// of them.
	if !t.IsBlock || unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0) != nil {
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	h := sha256.New()
	p.Start("verifying "+t.Path, n)
	got, err := io.CopyBuffer(io.MultiWriter(h, p), io.LimitReader(f, n), make([]byte, 4<<20))
	p.Done()
	if err != nil {
		return "", fmt.Errorf("reading %s back: %w", t.Path, err)
	}
	if got != n {
		return "", fmt.Errorf("%w: %s gave %d bytes back, %d written", ErrVerify, t.Path, got, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func describe(t *Target, info ImageInfo) string {
	if !t.IsBlock {
		return fmt.Sprintf("file %s (%s image)", t.Path, units.Bytes(info.Size))
	}
	d := t.Disk
	s := fmt.Sprintf("%s (%s", t.Path, units.Bytes(d.SizeBytes))
	if d.Model != "" {
		s += ", " + d.Model
	}
	if len(d.Partitions) > 0 {
		s += fmt.Sprintf(", %d partitions that will be lost", len(d.Partitions))
	}
	return s + fmt.Sprintf(") with a %s image", units.Bytes(info.Size))
}
