package uimage

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var epoch = time.Unix(1704067200, 0)

// mkimage runs u-boot-tools' mkimage with SOURCE_DATE_EPOCH=t and returns
// the image it wrote.
func mkimage(t *testing.T, when time.Time, data []byte, args ...string) []byte {
	t.Helper()
	testenv.NeedTools(t, "mkimage")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mkimage", append(args, "-d", in, out)...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(when.Unix(), 10))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage %q: %v\n%s", args, err, o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mkimageList runs mkimage -l on b.
func mkimageList(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	os.WriteFile(p, b, 0o644)
	o, err := exec.Command("mkimage", "-l", p).CombinedOutput()
	if err != nil {
		t.Fatalf("mkimage -l: %v\n%s", err, o)
	}
	return string(o)
}

// TestScriptMatchesMkimage: boot.scr from Go and from mkimage are the same
// bytes, for scripts of every length modulo 4 and names up to and past
// the 32-byte field.
func TestScriptMatchesMkimage(t *testing.T) {
	scripts := []string{
		"e",
		"echo hi\n",
		"setenv bootargs console=ttymxc1,115200\nbootz 0x12000000 0x13000000 0x18000000\n",
		"echo 1234567",
	}
	names := []string{"", "ofsroot", "ofsroot boot script nitrogen6x", strings.Repeat("n", 31), strings.Repeat("x", 32), strings.Repeat("y", 40)}
	for i, s := range scripts {
		for j, name := range names {
			when := epoch.Add(time.Duration(i*len(names)+j) * time.Hour)
			got, err := Script(ArchARM, name, when, []byte(s))
			if err != nil {
				t.Fatal(err)
			}
			want := mkimage(t, when, []byte(s), "-A", "arm", "-O", "linux", "-T", "script", "-C", "none", "-a", "0", "-e", "0", "-n", name)
			if !bytes.Equal(got, want) {
				t.Errorf("script %q name %q: differs from mkimage\n got % x\nwant % x", s, name, head(got), head(want))
			}
			img, err := Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := img.Script()
			if err != nil || string(back) != s {
				t.Errorf("Script() = %q, %v; want %q", back, err, s)
			}
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}

// TestRAMDiskMatchesMkimage: uInitrd from Go and from mkimage are the same
// bytes, for each compression label and architecture.
func TestRAMDiskMatchesMkimage(t *testing.T) {
	data := bytes.Repeat([]byte("070701 cpio-ish payload "), 1000)
	for _, tc := range []struct {
		arch Arch
		comp Comp
		a, c string
	}{
		{ArchARM, CompNone, "arm", "none"},
		{ArchARM, CompGzip, "arm", "gzip"},
		{ArchARM64, CompZstd, "arm64", "zstd"},
		{ArchX86_64, CompNone, "x86_64", "none"},
	} {
		got, err := RAMDisk(tc.arch, tc.comp, "initramfs", epoch, data)
		if err != nil {
			t.Fatal(err)
		}
		want := mkimage(t, epoch, data, "-A", tc.a, "-O", "linux", "-T", "ramdisk", "-C", tc.c, "-a", "0", "-e", "0", "-n", "initramfs")
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s: differs from mkimage\n got % x\nwant % x", tc.a, tc.c, head(got), head(want))
		}
	}
}

// TestKernelLoadEntry covers the load and entry fields, which the script
// and ramdisk helpers leave at 0.
func TestKernelLoadEntry(t *testing.T) {
	data := []byte("not really a kernel")
	got, err := Encode(Header{Time: epoch, Load: 0x10008000, Entry: 0x10008040, OS: OSLinux, Arch: ArchARM, Type: TypeKernel, Comp: CompNone, Name: "Linux"}, data)
	if err != nil {
		t.Fatal(err)
	}
	want := mkimage(t, epoch, data, "-A", "arm", "-O", "linux", "-T", "kernel", "-C", "none", "-a", "0x10008000", "-e", "0x10008040", "-n", "Linux")
	if !bytes.Equal(got, want) {
		t.Errorf("kernel image differs from mkimage\n got % x\nwant % x", head(got), head(want))
	}
}

// TestMkimageList: mkimage -l accepts what Script and RAMDisk write and
// reads back the fields.
func TestMkimageList(t *testing.T) {
	testenv.NeedTools(t, "mkimage")
	scr, _ := Script(ArchARM, "ofsroot nitrogen6x", epoch, []byte("echo hello\n"))
	out := mkimageList(t, scr)
	for _, want := range []string{"Image Name:   ofsroot nitrogen6x", "Image Type:   ARM Linux Script (uncompressed)", "Data Size:    19 Bytes", "Contents:", "Image 0: 11 Bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("mkimage -l lacks %q:\n%s", want, out)
		}
	}
	rd, _ := RAMDisk(ArchARM, CompGzip, "initramfs", epoch, []byte("x"))
	out = mkimageList(t, rd)
	for _, want := range []string{"Image Name:   initramfs", "Image Type:   ARM Linux RAMDisk Image (gzip compressed)", "Load Address: 00000000"} {
		if !strings.Contains(out, want) {
			t.Errorf("mkimage -l lacks %q:\n%s", want, out)
		}
	}
}

func TestMulti(t *testing.T) {
	got := Multi([]byte("abcde"), []byte("fg"), []byte("h"))
	want := []byte{0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, 'f', 'g', 0, 0, 'h'}
	if !bytes.Equal(got, want) {
		t.Errorf("Multi = % x\nwant   % x", got, want)
	}
	img := &Image{Data: got}
	parts, err := img.Parts()
	if err != nil || len(parts) != 3 || string(parts[0]) != "abcde" || string(parts[1]) != "fg" || string(parts[2]) != "h" {
		t.Errorf("Parts = %q, %v", parts, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := Script(ArchARM, "x", epoch, []byte("echo\n"))
	if _, err := Decode(good[:10]); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	bad := bytes.Clone(good)
	bad[0] ^= 1
	if _, err := Decode(bad); !errors.Is(err, ErrMagic) {
		t.Errorf("magic: %v", err)
	}
	bad = bytes.Clone(good)
	bad[40] ^= 1 // in the name
	if _, err := Decode(bad); !errors.Is(err, ErrHeaderCRC) {
		t.Errorf("header CRC: %v", err)
	}
	bad = bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if _, err := Decode(bad); !errors.Is(err, ErrDataCRC) {
		t.Errorf("data CRC: %v", err)
	}
	if _, err := Decode(good[:len(good)-1]); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
	img, err := Decode(append(bytes.Clone(good), "trailing"...))
	if err != nil || img.Name != "x" || img.Type != TypeScript || !img.Time.Equal(epoch) {
		t.Errorf("trailing bytes: %+v, %v", img, err)
	}
	if _, err := Script(ArchARM, "x", epoch, nil); err == nil {
		t.Error("an empty script: want an error (mkimage refuses one too)")
	}
	if _, err := Encode(Header{Time: time.Unix(-1, 0)}, nil); err == nil {
		t.Error("a time before 1970: want an error")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{OSLinux.String(), "linux"}, {ArchARM.String(), "arm"}, {ArchARM64.String(), "arm64"},
		{ArchX86_64.String(), "x86_64"}, {ArchI386.String(), "x86"}, {TypeScript.String(), "script"},
		{TypeRAMDisk.String(), "ramdisk"}, {TypeKernel.String(), "kernel"}, {TypeMulti.String(), "multi"},
		{CompNone.String(), "none"}, {CompGzip.String(), "gzip"}, {CompZstd.String(), "zstd"},
		{CompBzip2.String(), "bzip2"}, {CompLZMA.String(), "lzma"}, {CompLZO.String(), "lzo"}, {CompLZ4.String(), "lz4"},
		{Type(99).String(), "unknown(99)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for goarch, want := range map[string]Arch{"arm": ArchARM, "arm64": ArchARM64, "amd64": ArchX86_64, "386": ArchI386} {
		if a, err := ArchForGOARCH(goarch); err != nil || a != want {
			t.Errorf("ArchForGOARCH(%s) = %v, %v", goarch, a, err)
		}
	}
	if _, err := ArchForGOARCH("riscv64"); err == nil {
		t.Error("riscv64: want an error")
	}
}

// FuzzDecode: Decode never panics, and what it accepts re-encodes to the
// same bytes.
func FuzzDecode(f *testing.F) {
	scr, _ := Script(ArchARM, "ofsroot", epoch, []byte("echo hi\n"))
	rd, _ := RAMDisk(ArchARM, CompGzip, "initramfs", epoch, []byte{1, 2, 3})
	f.Add(scr)
	f.Add(rd)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := Decode(b)
		if err != nil {
			return
		}
		img.Parts()
		again, err := Encode(img.Header, img.Data)
		if err != nil {
			t.Fatal(err)
		}
		if img.Name == string(bytes.TrimRight(b[32:64], "\x00")) && !bytes.Equal(again, b[:len(again)]) {
			t.Errorf("re-encoding differs")
		}
	})
}
