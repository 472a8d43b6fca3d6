package ubootenv

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mtdDevice is a Linux MTD character device (/dev/mtdN).
type mtdDevice struct {
	f    *os.File
	info unix.MtdInfo
}

// MTD types from <mtd/mtd-abi.h> beyond what x/sys/unix names.
const mtdMLCNANDFlash = 8

func openMTD(f *os.File) (Device, error) {
	d := &mtdDevice{f: f}
	if err := d.ioctl(unix.MEMGETINFO, unsafe.Pointer(&d.info)); err != nil {
		return nil, fmt.Errorf("not an MTD device (MEMGETINFO: %w)", err)
	}
	switch d.info.Type {
	case unix.MTD_NORFLASH, unix.MTD_NANDFLASH, mtdMLCNANDFlash:
	default:
		return nil, fmt.Errorf("MTD type %d is neither NOR nor NAND flash", d.info.Type)
	}
	if d.info.Erasesize == 0 {
		return nil, errors.New("MTD device reports an erase size of 0")
	}
	return d, nil
}

func (d *mtdDevice) ioctl(req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func (d *mtdDevice) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *mtdDevice) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }
func (d *mtdDevice) Size() (int64, error)                     { return int64(d.info.Size), nil }
func (d *mtdDevice) EraseSize() int64                         { return int64(d.info.Erasesize) }
func (d *mtdDevice) Sync() error                              { return nil } // MTD writes are synchronous
func (d *mtdDevice) Close() error                             { return d.f.Close() }

func (d *mtdDevice) Medium() Medium {
	if d.info.Type == unix.MTD_NORFLASH {
		return MediumNOR
	}
	return MediumNAND
}

// Erase unlocks (which may fail harmlessly: not every chip locks) and
// erases, as fw_setenv does.
func (d *mtdDevice) Erase(off, length int64) error {
	if off < 0 || length <= 0 || off+length > 1<<32 {
		return fmt.Errorf("erase 0x%X+0x%X: out of the 32-bit MTD range", off, length)
	}
	ei := unix.EraseInfo{Start: uint32(off), Length: uint32(length)}
	d.ioctl(unix.MEMUNLOCK, unsafe.Pointer(&ei))
	if err := d.ioctl(unix.MEMERASE, unsafe.Pointer(&ei)); err != nil {
		return fmt.Errorf("MEMERASE 0x%X+0x%X: %w", off, length, err)
	}
	return nil
}

func (d *mtdDevice) IsBad(off int64) (bool, error) {
	if d.Medium() != MediumNAND {
		return false, nil
	}
	o := off
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), uintptr(unix.MEMGETBADBLOCK), uintptr(unsafe.Pointer(&o)))
	if errno != 0 {
		return false, fmt.Errorf("MEMGETBADBLOCK 0x%X: %w", off, errno)
	}
	return r > 0, nil
}
