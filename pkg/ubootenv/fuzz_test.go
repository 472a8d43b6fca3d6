package ubootenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode: for any data area (given a correct CRC, which random bytes
// would almost never have), Decode never panics, fails only for a
// missing end mark, and what it accepts encodes back to a copy that
// decodes to the same variables.
func FuzzDecode(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new interesting
	// input, which takes long for kilobytes. U-Boot's own copy is cut
	// after its first variables, with a fresh end mark.
	if b, err := os.ReadFile("testdata/nitrogen6q-saveenv.bin"); err == nil {
		data := b[4:]
		cut := 0
		for i := 0; i < 6; i++ {
			cut += bytes.IndexByte(data[cut:], 0) + 1
		}
		f.Add(append(bytes.Clone(data[:cut]), 0), false)
	}
	e := New()
	for _, kv := range tricky {
		if kv[0] != "long" {
			e.Set(kv[0], kv[1])
		}
	}
	b, _ := Encode(e, 0x400, true, 3)
	f.Add(b[5:5+DataSize(e)], true)
	f.Add([]byte("a=1\x00junk\x00=x\x00a=2\x00\x00"), false)
	f.Add([]byte("\x00\x00"), true)
	f.Add([]byte("no end"), false)
	f.Add(bytes.Repeat([]byte{0xff}, 64), false)
	f.Fuzz(func(t *testing.T, data []byte, redundant bool) {
		h := HeaderSize(redundant)
		b := make([]byte, h+len(data))
		copy(b[h:], data)
		if redundant {
			b[4] = 7
		}
		binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[h:]))
		e, flag, err := Decode(b, redundant)
		if err != nil {
			if len(b) > h && !errors.Is(err, ErrNoEndMark) {
				t.Fatalf("a copy with a good CRC: %v", err)
			}
			return
		}
		for _, n := range e.Names() {
			if CheckName(n) != nil {
				t.Fatalf("decoded a bad name %q", n)
			}
		}
		if DataSize(e) > len(data) {
			t.Fatalf("DataSize %d > the %d bytes it came from", DataSize(e), len(data))
		}
		again, err := Encode(e, len(b), redundant, flag)
		if err != nil {
			t.Fatalf("re-encoding a decoded copy: %v", err)
		}
		e2, flag2, err := Decode(again, redundant)
		if err != nil || !e2.Equal(e) || flag2 != flag {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzDecodeRaw: on any bytes at all, Decode never panics and sorts
// them as the format says: shorter than a header is ErrShort; a stored
// CRC-32 that is not the data area's (worked out here) is ErrBadCRC; a
// good CRC gives the variables or ErrNoEndMark, never anything else; the
// flag is byte 4 of a redundant copy; what it accepts has only valid
// names and encodes back to a copy of the same size that decodes to the
// same variables and flag.
func FuzzDecodeRaw(f *testing.F) {
	small, _ := Encode(envOf(f, "a", "b"), 32, false, 0)
	f.Add(small, false)
	f.Add([]byte{1, 2, 3, 4, 5}, true)
	red, _ := Encode(envOf(f, "bootcmd", "run x", "a", "b"), 64, true, 9)
	f.Add(red, true)
	f.Add(red, false)
	f.Add([]byte{0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, redundant bool) {
		e, flag, err := Decode(b, redundant)
		h := HeaderSize(redundant)
		if len(b) < h+1 {
			if !errors.Is(err, ErrShort) || e != nil {
				t.Fatalf("%d bytes, header %d: %v, want ErrShort", len(b), h, err)
			}
			return
		}
		if redundant && flag != b[4] {
			t.Fatalf("flag %d, byte 4 is %d", flag, b[4])
		}
		if !redundant && flag != 0 {
			t.Fatalf("flag %d for a single copy", flag)
		}
		if crc32.ChecksumIEEE(b[h:]) != binary.LittleEndian.Uint32(b) {
			if !errors.Is(err, ErrBadCRC) || e != nil {
				t.Fatalf("stored CRC %08x is not the data's: %v, want ErrBadCRC", binary.LittleEndian.Uint32(b), err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrNoEndMark) || e != nil || bytes.Contains(b[h:], []byte{0, 0}) || b[h] == 0 {
				t.Fatalf("a copy with a good CRC: %v (an end mark is there: %v)", err, bytes.Contains(b[h:], []byte{0, 0}) || b[h] == 0)
			}
			return
		}
		for _, n := range e.Names() {
			if CheckName(n) != nil {
				t.Fatalf("decoded a bad name %q", n)
			}
		}
		again, err := Encode(e, len(b), redundant, flag)
		if err != nil {
			t.Fatalf("re-encoding a decoded copy into its own %d bytes: %v", len(b), err)
		}
		e2, flag2, err := Decode(again, redundant)
		if err != nil || !e2.Equal(e) || flag2 != flag {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseConfig: ParseConfig never panics, and what it accepts renders
// (String) to text that parses to the same configuration.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"/dev/mtd0 0xC0000 0x2000 0x1000\n",
		"# comment\n/dev/mmcblk0 -0x2000 0x2000\n/dev/mmcblk0 -0x4000 0x2000\n",
		"/dev/mtd2 0 20000 20000 4\n",
		"env.img 010 2000",
		"x 0 0x\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(c.Copies) == 0 || len(c.Copies) > 2 {
			t.Fatalf("%d copies", len(c.Copies))
		}
		again, err := ParseConfig(strings.NewReader(c.String()))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("String() does not round-trip: %v\n%q\n%q", err, s, c.String())
		}
	})
}

// FuzzParseText: the default-environment reader never panics and never
// yields a name Set would refuse.
func FuzzParseText(f *testing.F) {
	f.Add("bootcmd=run distro_bootcmd\n# c\nx=\n=y\n")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseText(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, n := range e.Names() {
			if strings.Contains(n, "=") || n == "" {
				t.Fatalf("name %q", n)
			}
		}
	})
}
