package blockdev

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const (
	mbrScript = `label: dos
label-id: 0x1a2b3c4d
unit: sectors

start=2048, size=4096, type=83, bootable
start=6144, size=4096, type=c
start=10240, size=20480, type=5
start=12288, size=4096, type=83
start=18432, size=4096, type=82
`
	// The third partition goes into slot 4, leaving slot 3 empty, so the
	// numbering by slot (not by count) is tested.
	gptScript = `label: gpt
label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
unit: sectors
first-lba: 2048

IMG1 : start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=11111111-2222-3333-4444-555555555555, name="EFI system"
IMG2 : start=6144, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE, name="root fs"
IMG4 : start=14336, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=0F0E0D0C-0B0A-0908-0706-050403020100, name="Grüße ✓"
`
)

// sfdiskImage partitions a new 16 MiB image with sfdisk.
func sfdiskImage(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	img := sparseFile(t, dir, "disk.img", 16<<20)
	run(t, strings.ReplaceAll(script, "IMG", img), "sfdisk", "-q", "--no-reread", "--no-tell-kernel", img)
	return img
}

func readPartitions(t *testing.T, img string) (string, []Partition) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	scheme, parts, err := Partitions(f, st.Size())
	if err != nil {
		t.Fatalf("Partitions: %v", err)
	}
	return scheme, parts
}

func TestPartitionsMBR(t *testing.T) {
	img := sfdiskImage(t, mbrScript)
	scheme, parts := readPartitions(t, img)
	const s = 512
	want := []Partition{
		{Number: 1, Start: 2048 * s, Size: 4096 * s, UUID: "1a2b3c4d-01", Type: "0x83"},
		{Number: 2, Start: 6144 * s, Size: 4096 * s, UUID: "1a2b3c4d-02", Type: "0xc"},
		{Number: 3, Start: 10240 * s, Size: 20480 * s, UUID: "1a2b3c4d-03", Type: "0x5"},
		{Number: 5, Start: 12288 * s, Size: 4096 * s, UUID: "1a2b3c4d-05", Type: "0x83"},
		{Number: 6, Start: 18432 * s, Size: 4096 * s, UUID: "1a2b3c4d-06", Type: "0x82"},
	}
	if scheme != "dos" || !reflect.DeepEqual(parts, want) {
		t.Errorf("Partitions = %s %+v\nwant dos %+v", scheme, parts, want)
	}
	comparePartx(t, img, parts)
}

func TestPartitionsGPT(t *testing.T) {
	img := sfdiskImage(t, gptScript)
	scheme, parts := readPartitions(t, img)
	const s = 512
	want := []Partition{
		{1, 2048 * s, 4096 * s, "11111111-2222-3333-4444-555555555555", "EFI system", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"},
		{2, 6144 * s, 8192 * s, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "root fs", "0fc63daf-8483-4772-8e79-3d69d8477de4"},
		{4, 14336 * s, 4096 * s, "0f0e0d0c-0b0a-0908-0706-050403020100", "Grüße ✓", "0fc63daf-8483-4772-8e79-3d69d8477de4"},
	}
	if scheme != "gpt" || !reflect.DeepEqual(parts, want) {
		t.Errorf("Partitions = %s %+v\nwant gpt %+v", scheme, parts, want)
	}
	comparePartx(t, img, parts)

	// With the primary header destroyed the backup at the last LBA
	// gives the same table.
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 512), 512); err != nil {
		t.Fatal(err)
	}
	f.Close()
	scheme, parts = readPartitions(t, img)
	if scheme != "gpt" || !reflect.DeepEqual(parts, want) {
		t.Errorf("from backup header: %s %+v\nwant gpt %+v", scheme, parts, want)
	}
}

// comparePartx checks parts against libblkid's view through partx.
// partx counts START and SECTORS in 512-byte units whatever the sector
// size.
func comparePartx(t *testing.T, img string, parts []Partition, extra ...string) {
	t.Helper()
	rows := partx(t, img, extra...)
	if len(rows) != len(parts) {
		t.Fatalf("partx lists %d partitions, Partitions %d: %v", len(rows), len(parts), rows)
	}
	for i, r := range rows {
		p := parts[i]
		got := map[string]string{
			"NR":      strconv.Itoa(p.Number),
			"START":   strconv.FormatUint(p.Start/512, 10),
			"SECTORS": strconv.FormatUint(p.Size/512, 10),
			"UUID":    p.UUID,
			"NAME":    p.Label,
			"TYPE":    p.Type,
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("partition %d: got %v, partx says %v", i, got, r)
		}
	}
}

// TestPartitionsSynthetic covers tables the tools do not make: 4 KiB
// sectors, damaged and hostile headers, EBR loops, FAT boot sectors.
func TestPartitionsSynthetic(t *testing.T) {
	const (
		linux = "0fc63daf-8483-4772-8e79-3d69d8477de4"
		u1    = "11111111-2222-3333-4444-555555555555"
	)
	tests := []struct {
		name      string
		img       []byte
		size      int64 // 0: len(img)
		scheme    string
		parts     []Partition
		wantError bool
		partx     bool // compare with libblkid too
	}{
		{
			name:   "gpt 4k sectors",
			img:    buildGPT(make([]byte, 1<<20), 4096, 128, 128, gptPart{0, linux, u1, "root", 6, 200}),
			scheme: "gpt",
			parts:  []Partition{{1, 6 * 4096, 195 * 4096, u1, "root", linux}},
			partx:  true,
		},
		{
			name:      "gpt 256-byte entries are not read, as by the kernel",
			img:       buildGPT(make([]byte, 1<<20), 512, 64, 256, gptPart{3, linux, u1, "x", 100, 100}),
			wantError: true,
		},
		{
			name: "gpt entry past the disk is skipped",
			img: buildGPT(make([]byte, 1<<20), 512, 128, 128,
				gptPart{0, linux, u1, "in", 40, 50}, gptPart{1, linux, u1, "out", 40, 1 << 30}),
			scheme: "gpt",
			parts:  []Partition{{1, 40 * 512, 11 * 512, u1, "in", linux}},
			partx:  true,
		},
		{
			name:      "gpt with 4 billion entries",
			img:       buildGPT(make([]byte, 1<<20), 512, 0xffffffff, 128),
			wantError: true,
		},
		{
			name:      "gpt with huge entries",
			img:       buildGPT(make([]byte, 1<<20), 512, 128, 1<<20),
			wantError: true,
		},
		{
			name: "gpt entries beyond the end",
			img: func() []byte {
				b := buildGPT(make([]byte, 1<<20), 512, 128, 128)
				binary.LittleEndian.PutUint64(b[512+72:], 1<<40)
				fixGPTChecksums(b, 512)
				return b
			}(),
			wantError: true,
		},
		{
			name: "gpt header checksum wrong and no backup",
			img: func() []byte {
				b := buildGPT(make([]byte, 1<<20), 512, 128, 128)
				b[512+20] ^= 1
				return b
			}(),
			wantError: true,
		},
		{
			name: "gpt entry checksum wrong",
			img: func() []byte {
				b := buildGPT(make([]byte, 1<<20), 512, 128, 128, gptPart{0, linux, u1, "a", 40, 50})
				b[1024+60] ^= 1
				return b
			}(),
			wantError: true,
		},
		{
			name:      "protective MBR alone",
			img:       buildMBR(make([]byte, 1<<20), 0, mbrPart{typ: 0xEE, start: 1, size: 2047}),
			wantError: true,
		},
		{
			name:   "mbr zero signature keeps PARTUUIDs as the kernel does",
			img:    buildMBR(make([]byte, 1<<20), 0, mbrPart{typ: 0x83, start: 2048, size: 10}),
			scheme: "dos",
			parts:  []Partition{{1, 2048 * 512, 10 * 512, "00000000-01", "", "0x83"}},
		},
		{
			name:   "mbr with no partitions",
			img:    buildMBR(make([]byte, 4096), 0xdeadbeef),
			scheme: "dos",
			partx:  true,
		},
		{
			name:  "mbr with bad boot flag is not a table",
			img:   buildMBR(make([]byte, 4096), 1, mbrPart{boot: 0x12, typ: 0x83, start: 1, size: 1}),
			partx: true,
		},
		{
			name:  "fat boot sector is not a table",
			img:   buildFAT16(0x12345678, "X", ""),
			partx: true,
		},
		{
			name: "ebr chain that loops",
			img: func() []byte {
				b := buildMBR(make([]byte, 1<<20), 0xabcdef01, mbrPart{typ: 0x05, start: 100, size: 1000})
				ebr := b[100*512:]
				putMBREntry(ebr[446:], mbrPart{typ: 0x83, start: 10, size: 20})
				putMBREntry(ebr[462:], mbrPart{typ: 0x05, start: 0, size: 1000}) // links to itself
				ebr[510], ebr[511] = 0x55, 0xAA
				return b
			}(),
			scheme: "dos",
			parts: []Partition{
				{1, 100 * 512, 1000 * 512, "abcdef01-01", "", "0x5"},
				{5, 110 * 512, 20 * 512, "abcdef01-05", "", "0x83"},
			},
			partx: true,
		},
		{
			name: "ebr garbage in entries 3 and 4 is ignored",
			img: func() []byte {
				b := buildMBR(make([]byte, 1<<20), 2, mbrPart{typ: 0x0f, start: 100, size: 1000})
				ebr := b[100*512:]
				putMBREntry(ebr[446:], mbrPart{typ: 0x83, start: 10, size: 20})
				putMBREntry(ebr[478:], mbrPart{typ: 0x83, start: 5000, size: 5000})
				ebr[510], ebr[511] = 0x55, 0xAA
				return b
			}(),
			scheme: "dos",
			parts: []Partition{
				{1, 100 * 512, 1000 * 512, "00000002-01", "", "0xf"},
				{5, 110 * 512, 20 * 512, "00000002-05", "", "0x83"},
			},
			partx: true,
		},
		{
			name:   "ebr past the end of the disk",
			img:    buildMBR(make([]byte, 4096), 3, mbrPart{typ: 0x05, start: 1 << 30, size: 10}),
			scheme: "dos",
			parts: []Partition{
				{1, 1 << 39, 10 * 512, "00000003-01", "", "0x5"},
			},
		},
		{name: "zeros", img: make([]byte, 1<<20)},
		{name: "short", img: []byte{0x55, 0xAA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = int64(len(tt.img))
			}
			cr := &countingReader{r: bytes.NewReader(tt.img)}
			scheme, parts, err := Partitions(cr, size)
			cr.checkBound(t)
			if (err != nil) != tt.wantError {
				t.Fatalf("Partitions error = %v, want error %v", err, tt.wantError)
			}
			if scheme != tt.scheme || !reflect.DeepEqual(parts, tt.parts) {
				t.Errorf("Partitions = %q %+v\nwant %q %+v", scheme, parts, tt.scheme, tt.parts)
			}
			if tt.partx {
				p := filepath.Join(t.TempDir(), "disk.img")
				if err := os.WriteFile(p, tt.img, 0o644); err != nil {
					t.Fatal(err)
				}
				ss := "512"
				if strings.Contains(tt.name, "4k") {
					ss = "4096"
				}
				comparePartx(t, p, parts, "-S", ss)
			}
		})
	}
}

// TestPartitionsVFATWithFakeMBR: mkfs.vfat --mbr writes a partition entry
// into a whole-disk FAT's boot sector; like blkid, that is no table.
func TestPartitionsVFATWithFakeMBR(t *testing.T) {
	dir := t.TempDir()
	img := sparseFile(t, dir, "stick.img", 8<<20)
	run(t, "", "mkfs.vfat", "--mbr=y", "-n", "STICK", img)
	if scheme, parts := readPartitions(t, img); scheme != "" || parts != nil {
		t.Errorf("Partitions = %q %v, want none", scheme, parts)
	}
	if b := blkid(t, img); b != nil && b["PTTYPE"] != "" {
		t.Errorf("blkid sees a %s table", b["PTTYPE"])
	}
}

func TestGPTName(t *testing.T) {
	enc := func(s string) []byte {
		b := make([]byte, 72)
		i := 0
		for _, r := range s {
			if r > 0xffff {
				hi, lo := 0xd800+((r-0x10000)>>10), 0xdc00+((r-0x10000)&0x3ff)
				binary.LittleEndian.PutUint16(b[i:], uint16(hi))
				binary.LittleEndian.PutUint16(b[i+2:], uint16(lo))
				i += 4
				continue
			}
			binary.LittleEndian.PutUint16(b[i:], uint16(r))
			i += 2
		}
		return b
	}
	for _, s := range []string{"", "root", "Grüße", "🙂 emoji", "thirty-six characters long name ok!!"} {
		if got := gptName(enc(s)); got != s {
			t.Errorf("gptName(%q) = %q", s, got)
		}
	}
	if got := gptName(enc("trailing   ")); got != "trailing" {
		t.Errorf("trailing spaces kept: %q", got)
	}
}

func TestPartitionsNoTable(t *testing.T) {
	img := sparseFile(t, t.TempDir(), "blank.img", 1<<20)
	if scheme, parts := readPartitions(t, img); scheme != "" || parts != nil {
		t.Errorf("blank disk: %q %v", scheme, parts)
	}
}

// countingReader counts the reads a parser makes and the bytes it asks
// for: the work Partitions does, measured without a clock.
type countingReader struct {
	r            io.ReaderAt
	reads, bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	c.bytes += int64(len(p))
	return c.r.ReadAt(p, off)
}

// Partitions' documented bound: 1+maxLogical reads for an MBR, 7 for a
// GPT; bytes: the boot sector, and per sector size (512, 4096) two
// headers and one entry array.
const (
	maxTableReads = 1 + maxLogical
	maxTableBytes = 512 + 2*512 + 2*4096 + 2*maxGPTEntries
)

func (c *countingReader) checkBound(t *testing.T) {
	t.Helper()
	if c.reads > maxTableReads || c.bytes > maxTableBytes {
		t.Errorf("Partitions made %d reads of %d bytes in all; the bound is %d reads, %d bytes", c.reads, c.bytes, maxTableReads, maxTableBytes)
	}
}

// TestPartitionsWorkBound: tables built to make the parser work as hard
// as it can stay within the bound: four extended partitions whose EBR
// chains are each as long as allowed, and GPTs whose entry arrays are as
// large as allowed but fail their checksum in both sector sizes.
func TestPartitionsWorkBound(t *testing.T) {
	// Four extended partitions, each a chain of EBRs one sector apart
	// that only link on (no data entries), 300 long each.
	const chain = 300
	img := make([]byte, (4*chain+8)*512)
	var ents []mbrPart
	for i := range 4 {
		start := uint32(1 + i*chain)
		ents = append(ents, mbrPart{typ: 0x05, start: start, size: chain})
		for j := range chain {
			ebr := img[(int(start)+j)*512:]
			if j+1 < chain {
				putMBREntry(ebr[446:], mbrPart{typ: 0x05, start: uint32(j + 1), size: 1})
			}
			ebr[510], ebr[511] = 0x55, 0xAA
		}
	}
	buildMBR(img, 1, ents...)
	cr := &countingReader{r: bytes.NewReader(img)}
	scheme, parts, err := Partitions(cr, int64(len(img)))
	if scheme != "dos" || err != nil || len(parts) != 4 {
		t.Errorf("chains: %q %d partitions %v", scheme, len(parts), err)
	}
	cr.checkBound(t)
	if cr.reads != maxTableReads {
		t.Errorf("chains: %d reads, want the budget exactly (%d): the test no longer reaches it", cr.reads, maxTableReads)
	}

	// GPT with the largest entry array allowed, with a wrong checksum,
	// primary and backup, for both sector sizes.
	for _, ss := range []int{512, 4096} {
		img := buildGPT(make([]byte, 2<<20+16*4096), ss, maxGPTEntries/128, 128)
		binary.LittleEndian.PutUint32(img[ss+88:], 1) // entries CRC
		h := img[ss : ss+92]
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		last := len(img) - ss
		copy(img[last:], h) // a backup header at the last LBA, pointing at the same array
		binary.LittleEndian.PutUint64(img[last+24:], uint64(len(img)/ss-1))
		bh := img[last : last+92]
		binary.LittleEndian.PutUint32(bh[16:], 0)
		binary.LittleEndian.PutUint32(bh[16:], crc32.ChecksumIEEE(bh))
		cr := &countingReader{r: bytes.NewReader(img)}
		if scheme, _, err := Partitions(cr, int64(len(img))); scheme != "" || err == nil {
			t.Errorf("%d: bad entry checksum accepted: %q %v", ss, scheme, err)
		}
		cr.checkBound(t)
		t.Logf("GPT, %d-byte sectors, bad entries: %d reads, %d bytes", ss, cr.reads, cr.bytes)
	}
}
