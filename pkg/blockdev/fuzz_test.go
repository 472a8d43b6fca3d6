package blockdev

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The fuzzers hold PID 1's promise: no byte pattern on a disk makes the
// probes panic, loop or allocate without bound.

func probeSeeds() [][]byte {
	const u = "c0ffee00-1234-5678-9abc-def012345678"
	return [][]byte{
		nil,
		make([]byte, 4096),
		buildExt(extCompatHasJournal, 0x2c2, 0x7b, u, "root"),
		buildXFS(u, "xfsroot"),
		buildBtrfs(u, "pool")[:68<<10],
		buildSquashfs(4),
		buildSwap(4096, u, "sw"),
		buildFAT16(0x12345678, "BOOT", "DIR"),
		fat32Seed(),
	}
}

// fat32Seed is a FAT32 boot sector whose root cluster chain the fuzzer can
// bend into loops.
func fat32Seed() []byte {
	img := make([]byte, 48<<10)
	bs := img[:512]
	copy(bs, "\xeb\x58\x90mkfs.fat")
	binary.LittleEndian.PutUint16(bs[0x0b:], 512)
	bs[0x0d] = 1
	binary.LittleEndian.PutUint16(bs[0x0e:], 8)
	bs[0x10] = 2
	bs[0x15] = 0xf8
	binary.LittleEndian.PutUint32(bs[0x20:], 70000)
	binary.LittleEndian.PutUint32(bs[0x24:], 8)
	binary.LittleEndian.PutUint32(bs[0x2c:], 2)
	binary.LittleEndian.PutUint16(bs[0x30:], 1)
	bs[0x42] = 0x29
	binary.LittleEndian.PutUint32(bs[0x43:], 0xdeadbeef)
	copy(bs[0x47:], "FAT32SEED  ")
	copy(bs[0x52:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xAA
	binary.LittleEndian.PutUint32(img[8*512+2*4:], 3) // cluster 2 → 3
	binary.LittleEndian.PutUint32(img[8*512+3*4:], 2) // cluster 3 → 2: a loop
	return img
}

var knownTypes = map[string]bool{
	"": true, "ext2": true, "ext3": true, "ext4": true, "jbd": true, "vfat": true,
	"squashfs": true, "squashfs3": true, "btrfs": true, "xfs": true, "swap": true,
}

func FuzzProbeFS(f *testing.F) {
	for _, s := range probeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		typ, uuid, label, _ := ProbeFS(bytes.NewReader(data))
		runtime.ReadMemStats(&after)
		if !knownTypes[typ] {
			t.Errorf("unknown type %q", typ)
		}
		if len(uuid) > 36 || len(label) > 256 {
			t.Errorf("uuid %q or label %q too long", uuid, label)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > probeAllocBound {
			t.Errorf("ProbeFS of %d bytes allocated %d bytes, more than the bound of %d", len(data), got, probeAllocBound)
		}
	})
}

// probeAllocBound is the most one ProbeFS may allocate, whatever the
// disk holds: twice the largest directory a FAT label search reads
// (fatMaxDirEntries entries of 32 bytes). The seeds take 0.2-54 KiB.
const probeAllocBound = 2 * fatMaxDirEntries * 32

// partitionSeed is a whole disk image for FuzzPartitions.
type partitionSeed struct {
	img         []byte
	claimLarger bool // the disk is larger than img: size len*3+4096
	scheme      string
}

// seedSize is the disk size FuzzPartitions gives Partitions.
func seedSize(n int, claimLarger bool) int64 {
	if claimLarger {
		return int64(n)*3 + 4096 // the device says it is larger than what can be read
	}
	return int64(n)
}

// partitionSeeds are as small as the tables allow.
func partitionSeeds() []partitionSeed {
	const linux = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	mbr := buildMBR(make([]byte, 4*512), 0x1a2b3c4d,
		mbrPart{boot: 0x80, typ: 0x83, start: 1, size: 1},
		mbrPart{typ: 0x05, start: 2, size: 2})
	ebr := mbr[2*512:]
	putMBREntry(ebr[446:], mbrPart{typ: 0x83, start: 1, size: 1})
	putMBREntry(ebr[462:], mbrPart{typ: 0x05, start: 1, size: 1})
	ebr[510], ebr[511] = 0x55, 0xAA
	// GPTs whose usable area is squeezed onto the entries' LBA (the
	// parser does not check overlap). With 512-byte sectors the entries
	// fill LBA 2 and one sector of partition follows; with 4096-byte
	// sectors the image ends after the entries and the disk claims to be
	// larger.
	gpt := buildGPT(make([]byte, 4*512), 512, 4, 128,
		gptPart{0, linux, "11111111-2222-3333-4444-555555555555", "root", 3, 3},
		gptPart{3, linux, "aaaaaaaa-2222-3333-4444-555555555555", "data", 2, 2})
	binary.LittleEndian.PutUint64(gpt[512+40:], 2)
	binary.LittleEndian.PutUint64(gpt[512+48:], 3)
	fixGPTChecksums(gpt, 512)
	gpt4k := buildGPT(make([]byte, 2*4096+512), 4096, 4, 128,
		gptPart{1, linux, "11111111-2222-3333-4444-555555555555", "4k", 2, 2})
	binary.LittleEndian.PutUint64(gpt4k[4096+40:], 2)
	binary.LittleEndian.PutUint64(gpt4k[4096+48:], 2)
	binary.LittleEndian.PutUint32(gpt4k[4096+88:], crc32.ChecksumIEEE(gpt4k[2*4096:]))
	fixGPTChecksums(gpt4k, 4096) // the header's (the entries are past the image's last whole sector)
	return []partitionSeed{
		{nil, false, ""},
		{mbr, false, "dos"},
		{gpt, false, "gpt"},
		{gpt4k, true, "gpt"},
		{buildMBR(make([]byte, 1024), 0, mbrPart{typ: 0xEE, start: 1, size: 1}), false, ""},
	}
}

// fuzzDisk lays a disk out of the fuzzer's pieces: the boot sector at 0,
// the GPT header at LBA 1 of 512- or 4096-byte sectors, then the rest
// (entry arrays, EBRs, backup header), each piece cut or zero-padded to
// its place; the rest is cut to fuzzRestMax bytes. With no header and no
// rest the disk is the boot sector's bytes as they are, so short disks
// are fuzzed too. (Large entry arrays and long EBR chains are
// TestPartitionsWorkBound's.)
//
// Why pieces and not one []byte: the fuzzing engine minimizes every
// input that finds new coverage by deleting each byte and then each
// range of bytes of each argument: O(n²) runs of the target for a piece
// of n bytes, up to -fuzzminimizetime (60 s) per input. With whole
// images as the one input (seeds of 64 and 128 KiB, and still 4 KiB for
// a GPT of 512-byte sectors) each new input spent the whole minute being
// minimized: 29 execs in 60 s, while the parser runs an input in
// microseconds. As pieces, the boot sector and header stay under 512
// bytes and the rest small: an input is minimized in about a second.
func fuzzDisk(mbr, hdr, rest []byte, sector4k bool) []byte {
	if len(hdr) == 0 && len(rest) == 0 {
		return mbr
	}
	rest = rest[:min(len(rest), fuzzRestMax)]
	ss := 512
	if sector4k {
		ss = 4096
	}
	img := make([]byte, 2*ss+len(rest))
	copy(img[:512], mbr)
	copy(img[ss:2*ss], hdr)
	copy(img[2*ss:], rest)
	return img
}

const fuzzRestMax = 1024

// splitDisk is fuzzDisk's inverse for the seeds.
func splitDisk(img []byte, sector4k bool) (mbr, hdr, rest []byte) {
	ss := 512
	if sector4k {
		ss = 4096
	}
	if len(img) <= 2*ss {
		return img, nil, nil
	}
	hdr = bytes.TrimRight(img[ss:2*ss], "\x00")
	return img[:512], hdr, img[2*ss:]
}

func FuzzPartitions(f *testing.F) {
	for _, s := range partitionSeeds() {
		ss4k := len(s.img) >= 2*4096 && string(s.img[4096:4104]) == "EFI PART"
		mbr, hdr, rest := splitDisk(s.img, ss4k)
		f.Add(mbr, hdr, rest, ss4k, s.claimLarger)
	}
	f.Fuzz(func(t *testing.T, mbr, hdr, rest []byte, sector4k, claimLarger bool) {
		check := func(img []byte) {
			size := seedSize(len(img), claimLarger)
			cr := &countingReader{r: bytes.NewReader(img)}
			scheme, parts, err := Partitions(cr, size)
			cr.checkBound(t)
			if err != nil && scheme != "" {
				t.Errorf("scheme %q with error %v", scheme, err)
			}
			if len(parts) > maxGPTEntries/128 {
				t.Errorf("%d partitions", len(parts))
			}
			for _, p := range parts {
				if p.Number < 1 || (scheme == "dos" && p.Number > maxLogical+4) {
					t.Errorf("partition number %d in a %s table", p.Number, scheme)
				}
			}
		}
		img := fuzzDisk(mbr, hdr, rest, sector4k)
		check(img)
		// Fix the checksums so the fuzzer gets past them into the entry
		// parsing, for both sector sizes.
		for _, ss := range []int{512, 4096} {
			if len(img) >= 2*ss && string(img[ss:ss+8]) == "EFI PART" {
				fixed := append([]byte(nil), img...)
				fixGPTChecksums(fixed, ss)
				check(fixed)
			}
		}
	})
}

// TestFuzzDiskSeeds: the seeds, split into pieces and laid out again,
// are the same disks and hold the tables they were made with.
func TestFuzzDiskSeeds(t *testing.T) {
	for i, s := range partitionSeeds() {
		ss4k := len(s.img) >= 2*4096 && string(s.img[4096:4104]) == "EFI PART"
		mbr, hdr, rest := splitDisk(s.img, ss4k)
		img := fuzzDisk(mbr, hdr, rest, ss4k)
		if !bytes.Equal(img, s.img) {
			t.Errorf("seed %d: laid out again it differs", i)
		}
		scheme, parts, _ := Partitions(bytes.NewReader(img), seedSize(len(img), s.claimLarger))
		if scheme != s.scheme || (scheme != "") != (len(parts) > 0) {
			t.Errorf("seed %d: %q %v, want a %q table", i, scheme, parts, s.scheme)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/dev/vda1", "UUID=x", "PARTUUID=1a2b3c4d-01/PARTNROFF=1", `/dev/disk/by-label/a\x20b`,
		"179:2", "b302", "LABEL=\"", `\x`, "/dev/disk/by-path/", "LABEL=my", "LABEL=data", "uuid=0D1E2F30-4152-6374-8596-A7B8C9DAE0F1",
		"/dev/cciss/c0d0", "PARTLABEL=swap"} {
		f.Add(s)
	}
	reversed := slices.Clone(resolveDevs)
	slices.Reverse(reversed)
	f.Fuzz(func(t *testing.T, spec string) {
		d, err := Resolve(spec, resolveDevs)
		// The order of the devices never matters: two matches are an
		// error, not the first one found.
		d2, err2 := Resolve(spec, reversed)
		if (err == nil) != (err2 == nil) || d.Name != d2.Name {
			t.Fatalf("Resolve(%q) = %q, %v; with the devices reversed %q, %v", spec, d.Name, err, d2.Name, err2)
		}
		if err != nil {
			return
		}
		i := slices.IndexFunc(resolveDevs, func(x Device) bool { return x.Name == d.Name })
		if i < 0 || !reflect.DeepEqual(resolveDevs[i], d) {
			t.Fatalf("Resolve(%q) = %+v, not one of the devices", spec, d)
		}
		// Unless it counts partitions on (PARTNROFF) or is a device
		// number, the spec names the device by one of its identifiers.
		if !strings.Contains(strings.ToUpper(spec), "PARTNROFF") && !devnumSpec(spec) {
			s := strings.ToLower(unescapeUdev(spec))
			named := false
			for _, id := range append([]string{strings.ReplaceAll(d.Name, "!", "/"), d.UUID, d.Label, d.PartUUID, d.PartLabel}, d.ByPath...) {
				if id != "" && strings.Contains(s, strings.ToLower(id)) {
					named = true
				}
			}
			if !named {
				t.Fatalf("Resolve(%q) = %s, which the spec does not name", spec, d.Name)
			}
		}
	})
}

// devnumSpec reports whether spec is MAJOR:MINOR or the kernel's hex
// device number.
func devnumSpec(spec string) bool {
	s := strings.TrimSpace(spec)
	if a, b, ok := strings.Cut(s, ":"); ok {
		_, e1 := strconv.ParseUint(a, 10, 32)
		_, e2 := strconv.ParseUint(b, 10, 32)
		return e1 == nil && e2 == nil
	}
	_, err := strconv.ParseUint(s, 16, 32)
	return err == nil
}

// FuzzUnescapeUdev: every byte written as \xHH, as udev writes unsafe
// ones, comes back; the result is never longer than the input.
func FuzzUnescapeUdev(f *testing.F) {
	for _, s := range []string{"a b", "a/b", "", `\x`, "\xff\x00", "my root"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var esc strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&esc, "\\x%02x", s[i])
		}
		if got := unescapeUdev(esc.String()); got != s {
			t.Fatalf("unescapeUdev(%q) = %q, want %q", esc.String(), got, s)
		}
		if got := unescapeUdev(s); len(got) > len(s) {
			t.Fatalf("unescapeUdev(%q) = %q: longer", s, got)
		}
	})
}
