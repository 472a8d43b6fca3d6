package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// fakeELF returns a minimal relocatable ELF64 file with a .modinfo
// section holding the given key=value fields (none: no section).
func fakeELF(t testing.TB, fields ...string) []byte {
	t.Helper()
	var modinfo []byte
	for _, f := range fields {
		modinfo = append(append(modinfo, f...), 0)
	}
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	var body bytes.Buffer
	const hdrSize = 64
	body.Write(modinfo)
	for body.Len()%8 != 0 {
		body.WriteByte(0)
	}
	shstrOff := hdrSize + body.Len()
	body.Write(shstrtab)
	for body.Len()%8 != 0 {
		body.WriteByte(0)
	}
	shoff := hdrSize + body.Len()
	secs := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: hdrSize, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: uint64(shstrOff), Size: uint64(len(shstrtab)), Addralign: 1},
	}
	shnum, shstrndx := 3, 2
	if len(fields) == 0 {
		secs = []elf.Section64{{}, {Name: 10, Type: uint32(elf.SHT_STRTAB), Off: uint64(shstrOff), Size: uint64(len(shstrtab)), Addralign: 1}}
		shnum, shstrndx = 2, 1
	}
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: uint64(shoff), Ehsize: hdrSize, Shentsize: 64, Shnum: uint16(shnum), Shstrndx: uint16(shstrndx),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, h)
	out.Write(body.Bytes())
	binary.Write(&out, binary.LittleEndian, secs)
	return out.Bytes()
}

// compress returns data compressed for a module file ending in suffix.
func compress(t testing.TB, suffix string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch suffix {
	case ".ko":
		return data
	case ".ko.xz":
		w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case ".ko.zst":
		w, _ := zstd.NewWriter(&b)
		w.Write(data)
		w.Close()
	case ".ko.gz":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	default:
		t.Fatalf("suffix %q", suffix)
	}
	return b.Bytes()
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, name, plain string }{
		{"kernel/fs/ext4/ext4.ko", "ext4", "kernel/fs/ext4/ext4.ko"},
		{"kernel/arch/x86/crypto/crc32c-intel.ko", "crc32c_intel", "kernel/arch/x86/crypto/crc32c-intel.ko"},
		{"/lib/modules/6.12/kernel/drivers/mmc/host/sdhci-esdhc-imx.ko.xz", "sdhci_esdhc_imx", "/lib/modules/6.12/kernel/drivers/mmc/host/sdhci-esdhc-imx.ko"},
		{"a/b/virtio_blk.ko.zst", "virtio_blk", "a/b/virtio_blk.ko"},
		{"gpio-mxc.ko.gz", "gpio_mxc", "gpio-mxc.ko"},
		{"modules.order", "", "modules.order"},
		{"x.ko.bz2", "", "x.ko.bz2"},
		{".ko", "", ".ko"},
		{"ko", "", "ko"},
	} {
		if got := NameFromPath(tc.in); got != tc.name {
			t.Errorf("NameFromPath(%q) = %q, want %q", tc.in, got, tc.name)
		}
		if got := PlainName(tc.in); got != tc.plain {
			t.Errorf("PlainName(%q) = %q, want %q", tc.in, got, tc.plain)
		}
	}
	for in, want := range map[string]string{"gpio-mxc": "gpio_mxc", "imx2_wdt": "imx2_wdt", "a-b-c": "a_b_c", "": ""} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSoftdep(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		pre, post, ignored []string
	}{
		{"pre: crc32c", []string{"crc32c"}, nil, nil},
		{"pre: crypto-crc32c", []string{"crypto-crc32c"}, nil, nil},
		{"pre: a b post: c", []string{"a", "b"}, []string{"c"}, nil},
		{"post: c pre: a", []string{"a"}, []string{"c"}, nil},
		{"  pre:   a\tb  ", []string{"a", "b"}, nil, nil},
		{"gcm", nil, nil, []string{"gcm"}},
		{"", nil, nil, nil},
		{"pre:", nil, nil, nil},
	} {
		pre, post, ign := ParseSoftdep(tc.in)
		if !reflect.DeepEqual(pre, tc.pre) || !reflect.DeepEqual(post, tc.post) || !reflect.DeepEqual(ign, tc.ignored) {
			t.Errorf("ParseSoftdep(%q) = %q %q %q, want %q %q %q", tc.in, pre, post, ign, tc.pre, tc.post, tc.ignored)
		}
	}
}

func TestParseModInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want ModInfo
		bad  bool
	}{
		{"ext4", "softdep=pre: crypto-crc32c\x00alias=fs-ext4\x00alias=ext3\x00depends=jbd2,mbcache,crc16\x00name=ext4\x00vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions \x00",
			ModInfo{Name: "ext4", Depends: []string{"jbd2", "mbcache", "crc16"}, SoftPre: []string{"crypto-crc32c"}, Aliases: []string{"fs-ext4", "ext3"}, Vermagic: "6.1.0-50-amd64 SMP preempt mod_unload modversions "}, false},
		{"empty depends", "depends=\x00name=overlay\x00", ModInfo{Name: "overlay"}, false},
		{"dashes in depends", "depends=sdhci,cqhci,sdhci-pltfm\x00", ModInfo{Depends: []string{"sdhci", "cqhci", "sdhci_pltfm"}}, false},
		{"padding", "\x00\x00name=a\x00\x00\x00\x00", ModInfo{Name: "a"}, false},
		{"value with =", "alias=of:N*T*Cfsl,imx6q-usdhc\x00parm=x:a=b\x00", ModInfo{Aliases: []string{"of:N*T*Cfsl,imx6q-usdhc"}}, false},
		{"two softdeps", "softdep=pre: a\x00softdep=pre: b post: c\x00", ModInfo{SoftPre: []string{"a", "b"}, SoftPost: []string{"c"}}, false},
		{"bad softdep", "softdep=gcm\x00", ModInfo{Ignored: []string{"gcm"}}, false},
		{"empty", "", ModInfo{}, false},
		{"no equals", "license\x00", ModInfo{}, true},
	} {
		got, err := ParseModInfo([]byte(tc.data))
		if (err != nil) != tc.bad {
			t.Errorf("%s: error %v, want error %v", tc.name, err, tc.bad)
			continue
		}
		if !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestReadModInfoCompressed(t *testing.T) {
	dir := t.TempDir()
	elfData := fakeELF(t, "name=foo_bar", "depends=a,b-c", "alias=foo")
	for _, s := range Suffixes {
		p := filepath.Join(dir, "foo-bar"+s)
		if err := os.WriteFile(p, compress(t, s, elfData), 0o644); err != nil {
			t.Fatal(err)
		}
		mi, err := ReadModInfo(p)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if mi.Name != "foo_bar" || !reflect.DeepEqual(mi.Depends, []string{"a", "b_c"}) || !reflect.DeepEqual(mi.Aliases, []string{"foo"}) {
			t.Errorf("%s: %+v", s, mi)
		}
		data, err := ReadModule(p)
		if err != nil || !bytes.Equal(data, elfData) {
			t.Errorf("ReadModule(%s) gave %d bytes, %v; want the %d-byte ELF", s, len(data), err, len(elfData))
		}
	}
	// No .modinfo section: empty info, no error.
	p := filepath.Join(dir, "bare.ko")
	os.WriteFile(p, fakeELF(t), 0o644)
	if mi, err := ReadModInfo(p); err != nil || !reflect.DeepEqual(mi, ModInfo{}) {
		t.Errorf("module without .modinfo: %+v, %v", mi, err)
	}
	// Not an ELF file: an error naming it.
	p = filepath.Join(dir, "junk.ko")
	os.WriteFile(p, []byte("junk"), 0o644)
	if _, err := ReadModInfo(p); err == nil || !strings.Contains(err.Error(), "junk.ko") {
		t.Errorf("junk module: %v", err)
	}
	p = filepath.Join(dir, "junk.ko.xz")
	os.WriteFile(p, []byte("junk"), 0o644)
	if _, err := ReadModInfo(p); err == nil || !strings.Contains(err.Error(), "junk.ko.xz") {
		t.Errorf("junk xz module: %v", err)
	}
}

func TestAliasMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"crc32c", "crc32c", true},
		{"crypto-crc32c", "crc32c", false},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001001sv00001AF4sd00000002bc01sc00i00", false},
		{"of:N*T*Cfsl,imx6q-usdhc", "of:NmmcT(null)Cfsl,imx6q-usdhc", true},
		{"devname:mapper/control", "devname:mapper/control", true},
		{"a*/b", "ax/b", true},
		{"fs-ext?", "fs-ext4", true},
		{"[", "[", true},
		{"[", "x", false},
	} {
		if got := aliasMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("aliasMatch(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"ovrlay", "overlay", 1}, {"ext4", "ext2", 1}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
