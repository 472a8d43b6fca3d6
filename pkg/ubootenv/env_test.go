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

func envOf(t testing.TB, kv ...string) *Env {
	t.Helper()
	e := New()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := e.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestEncodeLayout checks every byte of a small copy, single and
// redundant.
func TestEncodeLayout(t *testing.T) {
	e := envOf(t, "overlayfs", "yes", "bootdelay", "3", "ofs-size", "20")
	data := []byte("bootdelay=3\x00ofs-size=20\x00overlayfs=yes\x00\x00")
	for _, redundant := range []bool{false, true} {
		b, err := Encode(e, 64, redundant, 7)
		if err != nil {
			t.Fatal(err)
		}
		h := HeaderSize(redundant)
		want := make([]byte, 64-h)
		copy(want, data)
		if !bytes.Equal(b[h:], want) {
			t.Errorf("redundant=%v: data\n% x\nwant\n% x", redundant, b[h:], want)
		}
		if crc := binary.LittleEndian.Uint32(b); crc != crc32.ChecksumIEEE(want) {
			t.Errorf("redundant=%v: CRC %08x", redundant, crc)
		}
		if redundant && b[4] != 7 {
			t.Errorf("flag byte %d, want 7", b[4])
		}
		got, flag, err := Decode(b, redundant)
		if err != nil || !got.Equal(e) || (redundant && flag != 7) {
			t.Errorf("redundant=%v: Decode = %v, %d, %v", redundant, got.vars, flag, err)
		}
	}
	// The data size: each entry, its NUL, and the final NUL.
	if n := DataSize(e); n != len(data) {
		t.Errorf("DataSize = %d, want %d", n, len(data))
	}
}

// TestEncodeFits: an environment that fills the data area exactly fits;
// one byte more does not.
func TestEncodeFits(t *testing.T) {
	size := 32
	// 4 header + "a=" + value + NUL + final NUL = 32.
	v := strings.Repeat("v", size-4-2-2)
	if _, err := Encode(envOf(t, "a", v), size, false, 0); err != nil {
		t.Errorf("exact fit: %v", err)
	}
	if _, err := Encode(envOf(t, "a", v+"v"), size, false, 0); !errors.Is(err, ErrTooBig) {
		t.Errorf("one byte over: %v, want ErrTooBig", err)
	}
	empty, err := Encode(New(), 16, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e, _, err := Decode(empty, true); err != nil || e.Len() != 0 {
		t.Errorf("empty environment: %v %v", e, err)
	}
}

func TestDecode(t *testing.T) {
	mk := func(data string, size int) []byte {
		b := make([]byte, size)
		copy(b[4:], data)
		binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
		return b
	}
	e, _, err := Decode(mk("a=1\x00junk\x00=x\x00a=2\x00b=\x00c=x=y\x00\x00z=9\x00", 64), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "2", "b": "", "c": "x=y"}
	if !reflect.DeepEqual(e.vars, want) {
		t.Errorf("got %q, want %q (no '=' skipped, later duplicate wins, stop at the empty string)", e.vars, want)
	}
	if _, _, err := Decode(mk("a=1", 8), false); !errors.Is(err, ErrNoEndMark) {
		t.Errorf("no terminator: %v", err)
	}
	if _, _, err := Decode(mk("a=1\x00", 8), false); !errors.Is(err, ErrNoEndMark) {
		t.Errorf("no final empty string: %v", err)
	}
	bad := mk("a=1\x00\x00", 16)
	bad[10] ^= 0xff
	if _, _, err := Decode(bad, false); !errors.Is(err, ErrBadCRC) {
		t.Errorf("corrupted: %v", err)
	}
	if _, _, err := Decode([]byte{1, 2, 3, 4}, false); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	// Erased flash and zeros are not valid environments.
	for _, fill := range []byte{0x00, 0xff} {
		if _, _, err := Decode(bytes.Repeat([]byte{fill}, 0x2000), false); err == nil {
			t.Errorf("a copy of 0x%02x bytes decoded", fill)
		}
	}
}

// TestUBootSaveenv reads a copy U-Boot 2023.01 (Debian's nitrogen6q
// build, in QEMU's sabrelite machine) wrote with saveenv, and writes it
// back byte for byte: U-Boot sorts the variables and pads with zeros as
// Encode does.
func TestUBootSaveenv(t *testing.T) {
	b, err := os.ReadFile("testdata/nitrogen6q-saveenv.bin")
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := Decode(b, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"bootcmd":        "run distro_bootcmd",
		"fdtfile":        "imx6q-nitrogen6x.dtb",
		"kernel_addr_r":  "0x12000000",
		"ramdisk_addr_r": "0x13000000",
		"fdt_addr_r":     "0x18000000",
		"console":        "ttymxc1",
		"ofs-size":       "20",
	} {
		if got, ok := e.Get(name); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, ok, want)
		}
	}
	again, err := Encode(e, len(b), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Error("re-encoding U-Boot's own environment gives different bytes")
	}
}

func TestSetDeleteFlags(t *testing.T) {
	e := envOf(t, "ethaddr", "00:11:22:33:44:55", "serial#", "123", "bootdelay", "3", "kept", "x")
	e.Set(FlagsVar, "ethaddr:mo,serial#:sr,bootdelay:dc,junk,:x")
	f := Flags(e)
	if f.Access("ethaddr") != 'o' || f.Access("serial#") != 'r' || f.Access("bootdelay") != 'c' || f.Access("kept") != 'a' {
		t.Errorf("flags %q", f)
	}
	for _, name := range []string{"ethaddr", "serial#"} {
		if err := e.Set(name, "new"); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Set %s: %v, want ErrReadOnly", name, err)
		}
		if err := e.Delete(name); !errors.Is(err, ErrReadOnly) {
			t.Errorf("Delete %s: %v, want ErrReadOnly", name, err)
		}
	}
	if err := e.Set("bootdelay", "0"); err != nil {
		t.Errorf("change-default variable: %v", err)
	}
	// Write-once: a variable that does not exist yet may be set.
	e.Delete("kept")
	e.Set(FlagsVar, "kept:so")
	if err := e.Set("kept", "first"); err != nil {
		t.Errorf("first write of a write-once variable: %v", err)
	}
	if err := e.Set("kept", "second"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("second write: %v", err)
	}
	for _, bad := range []string{"", "a=b", "a\x00b"} {
		if err := e.Set(bad, "v"); !errors.Is(err, ErrBadName) {
			t.Errorf("Set(%q): %v", bad, err)
		}
	}
	if err := e.Set("a", "x\x00y"); err == nil {
		t.Error("a NUL in a value: want an error")
	}
	if err := e.Delete("does-not-exist"); err != nil {
		t.Errorf("deleting a missing variable: %v", err)
	}
}

func TestParseText(t *testing.T) {
	e, err := ParseText(strings.NewReader("# U-Boot default\nbootcmd=run distro_bootcmd\r\nbootdelay=3\nempty=\nnot a variable\n=novalue\nbootargs=a=b c\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"bootcmd": "run distro_bootcmd", "bootdelay": "3", "bootargs": "a=b c"}
	if !reflect.DeepEqual(e.vars, want) {
		t.Errorf("got %q, want %q", e.vars, want)
	}
	if n := e.Names(); !reflect.DeepEqual(n, []string{"bootargs", "bootcmd", "bootdelay"}) {
		t.Errorf("Names = %q", n)
	}
	c := e.Clone()
	c.Set("x", "1")
	if e.Equal(c) || e.Len() != 3 {
		t.Error("Clone shares state")
	}
}
