package kmod

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testSection is one section of a file built by buildELF.
type testSection struct {
	name  string
	typ   uint32
	flags uint64
	data  []byte
}

// buildELF writes a relocatable ELF file of the given class (32 or 64)
// and byte order with a NULL section, the given sections and a section
// name table, the way a module is laid out: header, section bytes,
// section table.
func buildELF(class int, order binary.ByteOrder, secs ...testSection) []byte {
	ehsize, shentsize := 64, 64
	if class == 32 {
		ehsize, shentsize = 52, 40
	}
	names := []byte{0}
	nameOff := make([]int, len(secs)+1)
	for i, s := range secs {
		nameOff[i] = len(names)
		names = append(append(names, s.name...), 0)
	}
	nameOff[len(secs)] = len(names)
	names = append(names, ".shstrtab\x00"...)
	all := append(append([]testSection(nil), secs...), testSection{name: ".shstrtab", typ: uint32(elf.SHT_STRTAB), data: names})

	body := make([]byte, ehsize)
	offs := make([]int, len(all))
	for i, s := range all {
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
		offs[i] = len(body)
		if s.typ != uint32(elf.SHT_NOBITS) {
			body = append(body, s.data...)
		}
	}
	for len(body)%8 != 0 {
		body = append(body, 0)
	}
	shoff := len(body)
	table := make([]byte, shentsize) // the NULL section
	for i, s := range all {
		h := make([]byte, shentsize)
		order.PutUint32(h[0:], uint32(nameOff[i]))
		order.PutUint32(h[4:], s.typ)
		if class == 32 {
			order.PutUint32(h[8:], uint32(s.flags))
			order.PutUint32(h[16:], uint32(offs[i]))
			order.PutUint32(h[20:], uint32(len(s.data)))
			order.PutUint32(h[32:], 1) // addralign
		} else {
			order.PutUint64(h[8:], s.flags)
			order.PutUint64(h[24:], uint64(offs[i]))
			order.PutUint64(h[32:], uint64(len(s.data)))
			order.PutUint64(h[48:], 1)
		}
		table = append(table, h...)
	}
	out := append(body, table...)
	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	machine := elf.EM_X86_64
	if class == 32 {
		out[elf.EI_CLASS] = byte(elf.ELFCLASS32)
		machine = elf.EM_ARM
	}
	out[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	if order == binary.BigEndian {
		out[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	}
	out[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	order.PutUint16(out[16:], uint16(elf.ET_REL))
	order.PutUint16(out[18:], uint16(machine))
	order.PutUint32(out[20:], uint32(elf.EV_CURRENT))
	shnum, shstrndx := uint16(len(all)+1), uint16(len(all))
	if class == 32 {
		order.PutUint32(out[0x20:], uint32(shoff))
		order.PutUint16(out[0x28:], uint16(ehsize))
		order.PutUint16(out[0x2e:], uint16(shentsize))
		order.PutUint16(out[0x30:], shnum)
		order.PutUint16(out[0x32:], shstrndx)
	} else {
		order.PutUint64(out[0x28:], uint64(shoff))
		order.PutUint16(out[0x34:], uint16(ehsize))
		order.PutUint16(out[0x3a:], uint16(shentsize))
		order.PutUint16(out[0x3c:], shnum)
		order.PutUint16(out[0x3e:], shstrndx)
	}
	return out
}

// stdModinfo is what debug/elf says a file's .modinfo holds.
func stdModinfo(data []byte) ([]byte, bool, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, false, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, false, nil
	}
	b, err := s.Data()
	return b, true, err
}

const testModinfo = "license=GPL\x00depends=a,b-c\x00softdep=pre: crc32c\x00alias=fs-foo\x00name=foo\x00vermagic=6.1.0-50-armmp SMP mod_unload ARMv7 \x00"

// Every class and byte order, against debug/elf.
func TestModInfoSectionLayouts(t *testing.T) {
	for _, class := range []int{32, 64} {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			data := buildELF(class, order,
				testSection{name: ".text", typ: uint32(elf.SHT_PROGBITS), flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), data: []byte{1, 2, 3}},
				testSection{name: ".bss", typ: uint32(elf.SHT_NOBITS), flags: uint64(elf.SHF_ALLOC), data: make([]byte, 100)},
				testSection{name: ".modinfo", typ: uint32(elf.SHT_PROGBITS), flags: uint64(elf.SHF_ALLOC), data: []byte(testModinfo)},
			)
			want, ok, err := stdModinfo(data)
			if err != nil || !ok || string(want) != testModinfo {
				t.Fatalf("ELF%d %v: the test file is wrong: debug/elf read %q, %v, %v", class, order, want, ok, err)
			}
			got, err := ModInfoSection(bytes.NewReader(data), int64(len(data)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("ELF%d %v: got %q, %v; want %q", class, order, got, err, want)
			}
			mi, err := ParseModInfo(got)
			if err != nil || mi.Name != "foo" || strings.Join(mi.Depends, ",") != "a,b_c" || !strings.HasPrefix(mi.Vermagic, "6.1.0-50-armmp ") {
				t.Errorf("ELF%d %v: modinfo %+v, %v", class, order, mi, err)
			}
			// No .modinfo: nil, no error.
			bare := buildELF(class, order, testSection{name: ".text", typ: uint32(elf.SHT_PROGBITS), data: []byte{1}})
			if got, err := ModInfoSection(bytes.NewReader(bare), int64(len(bare))); err != nil || got != nil {
				t.Errorf("ELF%d %v without .modinfo: %q, %v", class, order, got, err)
			}
		}
	}
}

// Real Debian modules of both architectures (ELF64 LE amd64, ELF32 LE
// armhf): the same bytes as debug/elf.
func TestModInfoSectionRealModules(t *testing.T) {
	cache := os.Getenv("OFSROOT_CACHE")
	if cache == "" {
		cache = "../../.cache"
	}
	for _, flavour := range []string{"amd64", "armmp"} {
		mods, _ := filepath.Glob(filepath.Join(cache, "linux-image-*-"+flavour, "lib/modules/*/kernel/fs/*/*.ko"))
		if len(mods) == 0 {
			t.Skipf("no Debian %s kernel in %s (OFSROOT_CACHE; the boot tests fetch one)", flavour, cache)
		}
		for _, m := range mods {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			want, ok, err := stdModinfo(data)
			if err != nil || !ok {
				t.Fatalf("%s: debug/elf: %v %v", m, ok, err)
			}
			got, err := ModInfoSection(bytes.NewReader(data), int64(len(data)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v; debug/elf read %d", m, len(got), err, len(want))
			}
		}
		t.Logf("%s: %d modules agree with debug/elf", flavour, len(mods))
	}
}

// countingReader counts the bytes asked of it, to show that a lying
// header makes the parser neither read nor allocate past the file.
type countingReader struct {
	r     io.ReaderAt
	asked int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.asked += int64(len(p))
	return c.r.ReadAt(p, off)
}

// Hostile headers: each is refused with an error, reading no more than
// the file holds.
func TestModInfoSectionHostile(t *testing.T) {
	good := buildELF(64, binary.LittleEndian, testSection{name: ".modinfo", typ: uint32(elf.SHT_PROGBITS), data: []byte(testModinfo)})
	shoff := int(binary.LittleEndian.Uint64(good[0x28:]))
	modinfoHdr := shoff + 64 // section 1
	good32 := buildELF(32, binary.BigEndian, testSection{name: ".modinfo", typ: uint32(elf.SHT_PROGBITS), data: []byte(testModinfo)})
	shoff32 := int(binary.BigEndian.Uint32(good32[0x20:]))
	edit := func(base []byte, fn func(b []byte)) []byte {
		b := append([]byte(nil), base...)
		fn(b)
		return b
	}
	le, be := binary.LittleEndian, binary.BigEndian
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an ELF"},
		{"not ELF", []byte("#!/bin/sh\necho this is no module\n"), "not an ELF"},
		{"truncated header", good[:40], "truncated"},
		{"bad class", edit(good, func(b []byte) { b[4] = 3 }), "class"},
		{"bad byte order", edit(good, func(b []byte) { b[5] = 0 }), "byte order"},
		{"bad version", edit(good, func(b []byte) { b[6] = 2 }), "version"},
		{"section table past the end", edit(good, func(b []byte) { le.PutUint64(b[0x28:], uint64(len(b))) }), "outside"},
		{"section table at 2^64-1", edit(good, func(b []byte) { le.PutUint64(b[0x28:], math.MaxUint64) }), "outside"},
		{"65535 sections", edit(good, func(b []byte) { le.PutUint16(b[0x3c:], 0xfffe) }), "do not fit"},
		{"small section header", edit(good, func(b []byte) { le.PutUint16(b[0x3a:], 16) }), "header size"},
		{"name table index out of range", edit(good, func(b []byte) { le.PutUint16(b[0x3e:], 9) }), "name table"},
		{"extended count lying", edit(good, func(b []byte) {
			le.PutUint16(b[0x3c:], 0)
			le.PutUint64(b[shoff+32:], 1<<40)
		}), "do not fit"},
		{".modinfo size 2^63", edit(good, func(b []byte) { le.PutUint64(b[modinfoHdr+32:], 1<<63) }), "outside"},
		{".modinfo offset wraps", edit(good, func(b []byte) {
			le.PutUint64(b[modinfoHdr+24:], math.MaxUint64-2)
			le.PutUint64(b[modinfoHdr+32:], 8)
		}), "outside"},
		{".modinfo compressed", edit(good, func(b []byte) { le.PutUint64(b[modinfoHdr+8:], 0x800) }), "compressed"},
		{"ELF32 BE .modinfo past the end", edit(good32, func(b []byte) { be.PutUint32(b[shoff32+40+20:], 0xffffffff) }), "outside"},
	} {
		c := &countingReader{r: bytes.NewReader(tc.data)}
		got, err := ModInfoSection(c, int64(len(tc.data)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %d bytes, error %v; want an error saying %q", tc.name, len(got), err, tc.want)
		}
		if c.asked > int64(len(tc.data))+64 {
			t.Errorf("%s: asked for %d bytes of a %d-byte file", tc.name, c.asked, len(tc.data))
		}
	}
	// The unedited files parse: the edits above are what is refused.
	for _, b := range [][]byte{good, good32} {
		if got, err := ModInfoSection(bytes.NewReader(b), int64(len(b))); err != nil || string(got) != testModinfo {
			t.Errorf("good file: %q, %v", got, err)
		}
	}
	// Extended numbering done right is read.
	ext := edit(good, func(b []byte) {
		n := le.Uint16(b[0x3c:])
		le.PutUint16(b[0x3c:], 0)
		le.PutUint64(b[shoff+32:], uint64(n))
	})
	if got, err := ModInfoSection(bytes.NewReader(ext), int64(len(ext))); err != nil || string(got) != testModinfo {
		t.Errorf("extended numbering: %q, %v", got, err)
	}
}

// FuzzModinfo: module files from a real root are hostile input to the
// init (the stale-initramfs fallback reads them). No panic, no read past
// the file, and where debug/elf reads a .modinfo too, the same bytes.
func FuzzModinfo(f *testing.F) {
	for _, class := range []int{32, 64} {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			f.Add(buildELF(class, order,
				testSection{name: ".bss", typ: uint32(elf.SHT_NOBITS), data: make([]byte, 8)},
				testSection{name: ".modinfo", typ: uint32(elf.SHT_PROGBITS), data: []byte(testModinfo)},
				testSection{name: ".BTF", typ: uint32(elf.SHT_PROGBITS), data: []byte("btf")}))
		}
	}
	f.Add(fakeELF(f, "name=x", "depends=y"))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &countingReader{r: bytes.NewReader(data)}
		got, err := ModInfoSection(c, int64(len(data)))
		if c.asked > int64(len(data))+64 {
			t.Fatalf("asked for %d bytes of a %d-byte file", c.asked, len(data))
		}
		if err != nil {
			return
		}
		if len(got) > len(data) {
			t.Fatalf("%d bytes of .modinfo from a %d-byte file", len(got), len(data))
		}
		ParseModInfo(got)
		if want, ok, serr := stdModinfo(data); serr == nil && ok && !bytes.Equal(got, want) {
			t.Fatalf("got %q, debug/elf read %q", got, want)
		}
		if out, _, err := StripBTF(data); err == nil && len(out) != len(data) {
			t.Fatalf("StripBTF changed the size: %d -> %d", len(data), len(out))
		}
	})
}
