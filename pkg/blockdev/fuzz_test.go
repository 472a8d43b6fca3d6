package blockdev

import (
	"bytes"
	"encoding/binary"
	"fmt"
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

func partitionSeeds() [][]byte {
	const linux = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	mbr := buildMBR(make([]byte, 64<<10), 0x1a2b3c4d,
		mbrPart{boot: 0x80, typ: 0x83, start: 1, size: 10},
		mbrPart{typ: 0x05, start: 16, size: 100})
	ebr := mbr[16*512:]
	putMBREntry(ebr[446:], mbrPart{typ: 0x83, start: 1, size: 4})
	putMBREntry(ebr[462:], mbrPart{typ: 0x05, start: 8, size: 20})
	ebr[510], ebr[511] = 0x55, 0xAA
	return [][]byte{
		nil,
		mbr,
		buildGPT(make([]byte, 64<<10), 512, 128, 128,
			gptPart{0, linux, "11111111-2222-3333-4444-555555555555", "root", 34, 60},
			gptPart{5, linux, "aaaaaaaa-2222-3333-4444-555555555555", "data", 61, 100}),
		buildGPT(make([]byte, 128<<10), 4096, 4, 128,
			gptPart{1, linux, "11111111-2222-3333-4444-555555555555", "4k", 6, 20}),
		buildMBR(make([]byte, 1024), 0, mbrPart{typ: 0xEE, start: 1, size: 1}),
	}
}

func FuzzPartitions(f *testing.F) {
	for _, s := range partitionSeeds() {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, claimLarger bool) {
		check := func(img []byte) {
			size := int64(len(img))
			if claimLarger {
				size = size*3 + 4096 // the device says it is larger than what can be read
			}
			scheme, parts, err := Partitions(bytes.NewReader(img), size)
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
		check(data)
		// Fix the checksums so the fuzzer gets past them into the entry
		// parsing, for both sector sizes.
		for _, ss := range []int{512, 4096} {
			if len(data) >= 2*ss && string(data[ss:ss+8]) == "EFI PART" {
				fixed := append([]byte(nil), data...)
				fixGPTChecksums(fixed, ss)
				check(fixed)
			}
		}
	})
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
