// Package uimage writes and reads U-Boot legacy images: the 64-byte
// big-endian header mkimage puts in front of a kernel, a ramdisk
// (uInitrd) or a boot script (boot.scr), with CRC-32s over the header and
// the payload.
//
// Images made here are byte-for-byte those of `mkimage -A ARCH -O linux
// -T TYPE -C COMP -a LOAD -e ENTRY -n NAME -d FILE` given the same time
// (mkimage takes SOURCE_DATE_EPOCH): the tests compare the two.
package uimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Magic is ih_magic.
const Magic = 0x27051956

// HeaderSize is the size of the legacy header.
const HeaderSize = 64

// NameSize is the size of ih_name; longer names are cut, as mkimage does.
const NameSize = 32

// OS is ih_os.
type OS uint8

// Arch is ih_arch.
type Arch uint8

// Type is ih_type.
type Type uint8

// Comp is ih_comp.
type Comp uint8

// The values this project uses, as include/image.h numbers them.
const (
	OSLinux OS = 5

	ArchARM    Arch = 2
	ArchI386   Arch = 3
	ArchARM64  Arch = 22
	ArchX86_64 Arch = 24

	TypeKernel  Type = 2
	TypeRAMDisk Type = 3
	TypeMulti   Type = 4
	TypeScript  Type = 6

	CompNone  Comp = 0
	CompGzip  Comp = 1
	CompBzip2 Comp = 2
	CompLZMA  Comp = 3
	CompLZO   Comp = 4
	CompLZ4   Comp = 5
	CompZstd  Comp = 6
)

var (
	osNames   = map[OS]string{OSLinux: "linux"}
	archNames = map[Arch]string{ArchARM: "arm", ArchI386: "x86", ArchARM64: "arm64", ArchX86_64: "x86_64"}
	typeNames = map[Type]string{TypeKernel: "kernel", TypeRAMDisk: "ramdisk", TypeMulti: "multi", TypeScript: "script"}
	compNames = map[Comp]string{CompNone: "none", CompGzip: "gzip", CompBzip2: "bzip2", CompLZMA: "lzma", CompLZO: "lzo", CompLZ4: "lz4", CompZstd: "zstd"}
)

// String gives mkimage's -O name.
func (o OS) String() string { return name(osNames, o) }

// String gives mkimage's -A name.
func (a Arch) String() string { return name(archNames, a) }

// String gives mkimage's -T name.
func (t Type) String() string { return name(typeNames, t) }

// String gives mkimage's -C name.
func (c Comp) String() string { return name(compNames, c) }

func name[K ~uint8](m map[K]string, k K) string {
	if s, ok := m[k]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", uint8(k))
}

// ArchForGOARCH maps a Go architecture to ih_arch.
func ArchForGOARCH(goarch string) (Arch, error) {
	switch goarch {
	case "arm":
		return ArchARM, nil
	case "arm64":
		return ArchARM64, nil
	case "386":
		return ArchI386, nil
	case "amd64":
		return ArchX86_64, nil
	}
	return 0, fmt.Errorf("no U-Boot architecture for GOARCH %q", goarch)
}

// Header is the legacy image header without its magic, sizes and CRCs,
// which Encode computes.
type Header struct {
	Time  time.Time // ih_time, in whole seconds
	Load  uint32    // ih_load
	Entry uint32    // ih_ep
	OS    OS
	Arch  Arch
	Type  Type
	Comp  Comp
	Name  string // cut to NameSize bytes
}

// Image is a decoded legacy image.
type Image struct {
	Header
	// HeaderCRC and DataCRC are the stored CRCs (Decode checks them).
	HeaderCRC, DataCRC uint32
	// Data is the payload after the header.
	Data []byte
}

// Encode returns the image of payload data under header h.
func Encode(h Header, data []byte) ([]byte, error) {
	if uint64(len(data)) > 0xffffffff {
		return nil, fmt.Errorf("payload of %d bytes does not fit a legacy image", len(data))
	}
	t := h.Time.Unix()
	if t < 0 || t > 0xffffffff {
		return nil, fmt.Errorf("time %v does not fit ih_time", h.Time)
	}
	out := make([]byte, HeaderSize+len(data))
	be := binary.BigEndian
	be.PutUint32(out[0:], Magic)
	// out[4:8] is the header CRC, filled in last.
	be.PutUint32(out[8:], uint32(t))
	be.PutUint32(out[12:], uint32(len(data)))
	be.PutUint32(out[16:], h.Load)
	be.PutUint32(out[20:], h.Entry)
	be.PutUint32(out[24:], crc32.ChecksumIEEE(data))
	out[28], out[29], out[30], out[31] = byte(h.OS), byte(h.Arch), byte(h.Type), byte(h.Comp)
	// mkimage copies the name with strncpy(ih_name, name, IH_NMLEN): cut,
	// zero-padded, with no terminator when it fills the field.
	copy(out[32:HeaderSize], h.Name)
	be.PutUint32(out[4:], crc32.ChecksumIEEE(out[:HeaderSize]))
	copy(out[HeaderSize:], data)
	return out, nil
}

// Multi returns the payload of a MULTI or SCRIPT image holding parts: a
// table of big-endian sizes ending with 0, then each part padded to 4
// bytes except the last, the layout mkimage writes and U-Boot's `source`
// reads.
func Multi(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		binary.Write(&b, binary.BigEndian, uint32(len(p)))
	}
	binary.Write(&b, binary.BigEndian, uint32(0))
	for i, p := range parts {
		b.Write(p)
		if i < len(parts)-1 {
			b.Write(make([]byte, (4-len(p)%4)%4))
		}
	}
	return b.Bytes()
}

// Script returns a boot.scr: a SCRIPT image (no compression, load and
// entry 0) holding the U-Boot commands in script, as `mkimage -A ARCH -O
// linux -T script -C none -a 0 -e 0 -n NAME -d SCRIPT` makes it.
func Script(arch Arch, name string, t time.Time, script []byte) ([]byte, error) {
	if len(script) == 0 {
		return nil, errors.New("empty boot script")
	}
	return Encode(Header{Time: t, OS: OSLinux, Arch: arch, Type: TypeScript, Comp: CompNone, Name: name}, Multi(script))
}

// RAMDisk returns a uInitrd: a RAMDISK image (load and entry 0) of the
// initramfs in data. comp only labels the payload: U-Boot hands a
// ramdisk to the kernel as it is and the kernel unpacks it.
func RAMDisk(arch Arch, comp Comp, name string, t time.Time, data []byte) ([]byte, error) {
	return Encode(Header{Time: t, OS: OSLinux, Arch: arch, Type: TypeRAMDisk, Comp: comp, Name: name}, data)
}

// Errors from Decode.
var (
	ErrShort     = errors.New("shorter than a legacy image header")
	ErrMagic     = errors.New("not a U-Boot legacy image (bad magic)")
	ErrHeaderCRC = errors.New("legacy image header CRC mismatch")
	ErrTruncated = errors.New("legacy image payload truncated")
	ErrDataCRC   = errors.New("legacy image payload CRC mismatch")
)

// Decode parses and checks an image: magic, header CRC, size and payload
// CRC. Bytes after the payload are ignored, as U-Boot does.
func Decode(b []byte) (*Image, error) {
	if len(b) < HeaderSize {
		return nil, ErrShort
	}
	be := binary.BigEndian
	if be.Uint32(b) != Magic {
		return nil, ErrMagic
	}
	hdr := make([]byte, HeaderSize)
	copy(hdr, b)
	stored := be.Uint32(hdr[4:])
	be.PutUint32(hdr[4:], 0)
	if crc32.ChecksumIEEE(hdr) != stored {
		return nil, ErrHeaderCRC
	}
	size := be.Uint32(b[12:])
	if uint64(len(b)-HeaderSize) < uint64(size) {
		return nil, fmt.Errorf("%w: header says %d bytes, %d present", ErrTruncated, size, len(b)-HeaderSize)
	}
	img := &Image{
		Header: Header{
			Time:  time.Unix(int64(be.Uint32(b[8:])), 0).UTC(),
			Load:  be.Uint32(b[16:]),
			Entry: be.Uint32(b[20:]),
			OS:    OS(b[28]), Arch: Arch(b[29]), Type: Type(b[30]), Comp: Comp(b[31]),
			Name: string(bytes.TrimRight(b[32:HeaderSize], "\x00")),
		},
		HeaderCRC: stored,
		DataCRC:   be.Uint32(b[24:]),
		Data:      b[HeaderSize : HeaderSize+int(size)],
	}
	if i := bytes.IndexByte(b[32:HeaderSize], 0); i >= 0 {
		img.Name = string(b[32 : 32+i])
	}
	if crc32.ChecksumIEEE(img.Data) != img.DataCRC {
		return img, ErrDataCRC
	}
	return img, nil
}

// Parts splits the payload of a MULTI or SCRIPT image into its parts.
func (img *Image) Parts() ([][]byte, error) {
	d := img.Data
	var sizes []uint32
	for off := 0; ; off += 4 {
		if off+4 > len(d) {
			return nil, errors.New("multi-file table has no terminating 0")
		}
		s := binary.BigEndian.Uint32(d[off:])
		if s == 0 {
			d = d[off+4:]
			break
		}
		sizes = append(sizes, s)
	}
	var parts [][]byte
	for i, s := range sizes {
		if uint64(s) > uint64(len(d)) {
			return nil, fmt.Errorf("part %d: %d bytes, %d left", i, s, len(d))
		}
		parts = append(parts, d[:s])
		n := int(s)
		if i < len(sizes)-1 {
			n += (4 - n%4) % 4
			if n > len(d) {
				n = len(d)
			}
		}
		d = d[n:]
	}
	return parts, nil
}

// Script returns the commands of a SCRIPT image.
func (img *Image) Script() ([]byte, error) {
	if img.Type != TypeScript {
		return nil, fmt.Errorf("image type %s, not script", img.Type)
	}
	parts, err := img.Parts()
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errors.New("script image has no parts")
	}
	return parts[0], nil
}

// Write encodes an image and writes it to w.
func Write(w io.Writer, h Header, data []byte) error {
	b, err := Encode(h, data)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
