package kmod

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A small reader of the ELF section table, enough to find a module's
// .modinfo and .BTF sections: ELF32 and ELF64, either byte order (amd64,
// arm64 and armhf modules alike). It replaces debug/elf, which the init
// does not need whole (it drags in debug/dwarf and three decompressors),
// and it is safe on hostile files: the stale-initramfs fallback reads
// modules from the real root. A lying header cannot make it read or
// allocate more than the file holds, and it never panics (FuzzModinfo).

// maxSectionRead bounds what one read of the section table or of a
// section may allocate, whatever the file's size: a module's .modinfo is
// a few KiB, its section table and name table a few KiB each.
const maxSectionRead = 16 << 20

// Section header types and flags used here (the ELF gABI).
const (
	shtNobits     = 8
	shfAlloc      = 0x2
	shfCompressed = 0x800
	shnXindex     = 0xffff
)

// elfSection is one entry of the section table.
type elfSection struct {
	name   string
	typ    uint32
	flags  uint64
	offset uint64 // in the file
	size   uint64
	hdr    uint64 // file offset of this section's header
}

// elfFile is the section table of an ELF file.
type elfFile struct {
	order    binary.ByteOrder
	class    int // 32 or 64
	sections []elfSection
}

// errNotELF is wrapped when a file is not ELF at all.
var errNotELF = errors.New("not an ELF file")

// parseELF reads the section table (with names) of the ELF file r of
// size bytes.
func parseELF(r io.ReaderAt, size int64) (*elfFile, error) {
	var ident [64]byte
	if size < 16 {
		return nil, fmt.Errorf("%w (%d bytes)", errNotELF, size)
	}
	n := min(size, int64(len(ident)))
	if _, err := r.ReadAt(ident[:n], 0); err != nil {
		return nil, fmt.Errorf("ELF header: %w", err)
	}
	if string(ident[:4]) != "\x7fELF" {
		return nil, errNotELF
	}
	f := &elfFile{}
	switch ident[5] {
	case 1:
		f.order = binary.LittleEndian
	case 2:
		f.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("ELF header: unknown byte order %d", ident[5])
	}
	if ident[6] != 1 {
		return nil, fmt.Errorf("ELF header: unknown version %d", ident[6])
	}
	var shoff uint64
	var shentsize, shnum, shstrndx, minEnt uint64
	switch ident[4] {
	case 1:
		if n < 52 {
			return nil, errors.New("ELF header: truncated")
		}
		f.class = 32
		shoff = uint64(f.order.Uint32(ident[0x20:]))
		shentsize = uint64(f.order.Uint16(ident[0x2e:]))
		shnum = uint64(f.order.Uint16(ident[0x30:]))
		shstrndx = uint64(f.order.Uint16(ident[0x32:]))
		minEnt = 40
	case 2:
		if n < 64 {
			return nil, errors.New("ELF header: truncated")
		}
		f.class = 64
		shoff = f.order.Uint64(ident[0x28:])
		shentsize = uint64(f.order.Uint16(ident[0x3a:]))
		shnum = uint64(f.order.Uint16(ident[0x3c:]))
		shstrndx = uint64(f.order.Uint16(ident[0x3e:]))
		minEnt = 64
	default:
		return nil, fmt.Errorf("ELF header: unknown class %d", ident[4])
	}
	if shoff == 0 {
		return f, nil // no section table
	}
	if shentsize < minEnt {
		return nil, fmt.Errorf("ELF header: section header size %d, want at least %d", shentsize, minEnt)
	}
	if shoff >= uint64(size) || shentsize > uint64(size)-shoff {
		return nil, fmt.Errorf("ELF header: section table at %d is outside the %d-byte file", shoff, size)
	}
	// Extended numbering: with 65280 sections or more, the counts are
	// in the first section header.
	if shnum == 0 || shstrndx == shnXindex {
		s0, err := f.readHeader(r, shoff, shentsize)
		if err != nil {
			return nil, err
		}
		if shnum == 0 {
			shnum = s0.size
		}
		if shstrndx == shnXindex {
			shstrndx = uint64(s0.link)
		}
	}
	if shnum > (uint64(size)-shoff)/shentsize {
		return nil, fmt.Errorf("ELF header: %d sections of %d bytes at %d do not fit in the %d-byte file", shnum, shentsize, shoff, size)
	}
	if shnum*shentsize > maxSectionRead {
		return nil, fmt.Errorf("ELF header: %d sections, more than a module has", shnum)
	}
	if shstrndx >= shnum {
		return nil, fmt.Errorf("ELF header: section name table %d of %d sections", shstrndx, shnum)
	}
	table := make([]byte, shnum*shentsize) // within the file, checked above
	if _, err := r.ReadAt(table, int64(shoff)); err != nil {
		return nil, fmt.Errorf("ELF section table: %w", err)
	}
	f.sections = make([]elfSection, shnum)
	nameOff := make([]uint32, shnum)
	for i := range f.sections {
		h := table[uint64(i)*shentsize:]
		s := &f.sections[i]
		s.hdr = shoff + uint64(i)*shentsize
		nameOff[i] = f.order.Uint32(h)
		s.typ = f.order.Uint32(h[4:])
		if f.class == 32 {
			s.flags = uint64(f.order.Uint32(h[8:]))
			s.offset = uint64(f.order.Uint32(h[16:]))
			s.size = uint64(f.order.Uint32(h[20:]))
		} else {
			s.flags = f.order.Uint64(h[8:])
			s.offset = f.order.Uint64(h[24:])
			s.size = f.order.Uint64(h[32:])
		}
	}
	names, err := f.sectionData(r, size, int(shstrndx))
	if err != nil {
		return nil, fmt.Errorf("ELF section name table: %w", err)
	}
	for i := range f.sections {
		if off := uint64(nameOff[i]); off < uint64(len(names)) {
			end := off
			for end < uint64(len(names)) && names[end] != 0 {
				end++
			}
			f.sections[i].name = string(names[off:end])
		}
	}
	return f, nil
}

// header0 is what the first section header says under extended
// numbering.
type header0 struct {
	size uint64
	link uint32
}

func (f *elfFile) readHeader(r io.ReaderAt, off, entsize uint64) (header0, error) {
	h := make([]byte, entsize)
	if _, err := r.ReadAt(h, int64(off)); err != nil {
		return header0{}, fmt.Errorf("ELF section table: %w", err)
	}
	if f.class == 32 {
		return header0{size: uint64(f.order.Uint32(h[20:])), link: f.order.Uint32(h[24:])}, nil
	}
	return header0{size: f.order.Uint64(h[32:]), link: f.order.Uint32(h[40:])}, nil
}

// section returns the index of the first section called name, -1 if
// there is none.
func (f *elfFile) section(name string) int {
	for i, s := range f.sections {
		if s.name == name {
			return i
		}
	}
	return -1
}

// sectionData reads section i. A SHT_NOBITS section has no bytes in the
// file and reads as empty.
func (f *elfFile) sectionData(r io.ReaderAt, size int64, i int) ([]byte, error) {
	s := f.sections[i]
	if s.typ == shtNobits {
		return nil, nil
	}
	if s.flags&shfCompressed != 0 {
		return nil, fmt.Errorf("section %q is compressed (SHF_COMPRESSED), which modules never are", s.name)
	}
	if s.offset > uint64(size) || s.size > uint64(size)-s.offset {
		return nil, fmt.Errorf("section %q (%d bytes at %d) is outside the %d-byte file", s.name, s.size, s.offset, size)
	}
	if s.size > maxSectionRead {
		return nil, fmt.Errorf("section %q is %d bytes, more than the %d a module's metadata needs", s.name, s.size, maxSectionRead)
	}
	data := make([]byte, s.size)
	if _, err := r.ReadAt(data, int64(s.offset)); err != nil {
		return nil, fmt.Errorf("section %q: %w", s.name, err)
	}
	return data, nil
}

// ModInfoSection returns the bytes of the .modinfo section of the ELF
// module r (size bytes long), nil if it has none. Only the ELF header,
// the section table, the section names and .modinfo are read.
func ModInfoSection(r io.ReaderAt, size int64) ([]byte, error) {
	f, err := parseELF(r, size)
	if err != nil {
		return nil, err
	}
	i := f.section(".modinfo")
	if i < 0 {
		return nil, nil
	}
	return f.sectionData(r, size, i)
}
