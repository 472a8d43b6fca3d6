package ubootenv

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Medium is what a device is made of, which decides how it is written
// and how two redundant copies say which is newer.
type Medium int

const (
	// MediumFile is a regular file or a block device: written in place,
	// synced; redundant copies carry a counter.
	MediumFile Medium = iota
	// MediumNOR is NOR flash (SPI NOR included): erased before it is
	// written; redundant copies carry 1 (active) or 0 (obsolete).
	MediumNOR
	// MediumNAND is NAND flash: erased block by block, bad blocks
	// skipped; redundant copies carry a counter.
	MediumNAND
)

func (m Medium) String() string {
	switch m {
	case MediumFile:
		return "file"
	case MediumNOR:
		return "NOR flash"
	case MediumNAND:
		return "NAND flash"
	}
	return fmt.Sprintf("medium(%d)", int(m))
}

// Counter says whether redundant copies on m carry a counter (true) or
// an active/obsolete flag (false).
func (m Medium) Counter() bool { return m != MediumNOR }

// Device is where copies of the environment live.
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Medium says how the device is written.
	Medium() Medium
	// Size is the device's size in bytes.
	Size() (int64, error)
	// EraseSize is the flash erase block size (0 for files).
	EraseSize() int64
	// Erase sets length bytes at off to the erased state. Both must be
	// multiples of EraseSize.
	Erase(off, length int64) error
	// IsBad reports whether the erase block at off is bad (NAND).
	IsBad(off int64) (bool, error)
	// Sync makes the writes durable.
	Sync() error
	Close() error
}

// OpenFunc opens the device of a location, for writing when write is
// set.
type OpenFunc func(path string, write bool) (Device, error)

// OpenDevice opens a regular file, a block device or (on Linux) an MTD
// character device.
func OpenDevice(path string, write bool) (Device, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode()&os.ModeCharDevice != 0 {
		d, err := openMTD(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return d, nil
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a folder", path)
	}
	return &fileDevice{f: f}, nil
}

// fileDevice is a regular file or a block device.
type fileDevice struct{ f *os.File }

func (d *fileDevice) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *fileDevice) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }
func (d *fileDevice) Medium() Medium                           { return MediumFile }
func (d *fileDevice) EraseSize() int64                         { return 0 }
func (d *fileDevice) Sync() error                              { return d.f.Sync() }
func (d *fileDevice) Close() error                             { return d.f.Close() }
func (d *fileDevice) IsBad(int64) (bool, error)                { return false, nil }

func (d *fileDevice) Erase(off, length int64) error {
	return errors.New("a file or block device is not erased")
}

// Size is the file's size; for a block device, where Stat says 0, the
// end found by seeking.
func (d *fileDevice) Size() (int64, error) {
	st, err := d.f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode().IsRegular() {
		return st.Size(), nil
	}
	return d.f.Seek(0, io.SeekEnd)
}
