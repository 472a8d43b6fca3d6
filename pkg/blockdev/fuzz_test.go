package blockdev

import (
	"bytes"
	"encoding/binary"
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
		typ, uuid, label, _ := ProbeFS(bytes.NewReader(data))
		if !knownTypes[typ] {
			t.Errorf("unknown type %q", typ)
		}
		if len(uuid) > 36 || len(label) > 256 {
			t.Errorf("uuid %q or label %q too long", uuid, label)
		}
	})
}

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
		"179:2", "b302", "LABEL=\"", `\x`, "/dev/disk/by-path/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		d, err := Resolve(spec, resolveDevs)
		if err == nil && d.Name == "" {
			t.Errorf("Resolve(%q) found an unnamed device", spec)
		}
		_ = unescapeUdev(spec)
	})
}
