package blockdev

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// needTool skips the test when a tool that makes or reads images is
// missing, saying which.
func needTool(t testing.TB, name string) {
	t.Helper()
	testenv.NeedTools(t, name)
}

// run runs a command and fails the test with its output if it fails.
func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	needTool(t, name)
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// sparseFile makes an empty file of size bytes in a test folder.
func sparseFile(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// blkid returns what `blkid -p -o export` says about a file or device, or
// nil when blkid is not installed or finds nothing.
func blkid(t testing.TB, path string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("blkid"); err != nil {
		return nil
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", path).Output()
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		// export format escapes shell-special characters with a backslash.
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		m[k] = b.String()
	}
	return m
}

// partx lists the partitions libblkid finds in an image, as
// `partx -P -o NR,START,SECTORS,UUID,NAME,TYPE` prints them; none when it
// finds no table.
func partx(t testing.TB, path string, extra ...string) []map[string]string {
	t.Helper()
	needTool(t, "partx")
	args := append(append([]string{}, extra...), "-g", "-b", "-P", "-o", "NR,START,SECTORS,UUID,NAME,TYPE", path)
	var stderr bytes.Buffer
	cmd := exec.Command("partx", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "failed to read partition table") {
			return nil
		}
		t.Fatalf("partx %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rows []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		rows = append(rows, parsePairs(t, line))
	}
	return rows
}

// parsePairs parses KEY="value" pairs with \xHH escapes, as util-linux
// tools print them with -P.
func parsePairs(t testing.TB, line string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		k, rest, ok := strings.Cut(line, `="`)
		if !ok {
			t.Fatalf("bad pairs line %q", line)
		}
		var v []byte
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+3 < len(rest) && rest[i+1] == 'x' {
				n, err := strconv.ParseUint(rest[i+2:i+4], 16, 8)
				if err != nil {
					t.Fatalf("bad escape in %q", rest)
				}
				v = append(v, byte(n))
				i += 3
				continue
			}
			v = append(v, rest[i])
		}
		m[k] = string(v)
		if i < len(rest) {
			i++
		}
		line = rest[i:]
	}
	return m
}

// Builders for images no installed tool makes, and for fuzz seeds. Each
// writes only the fields the probes read, at the offsets the on-disk
// formats define.

func putUUID(b []byte, s string) {
	s = strings.ReplaceAll(s, "-", "")
	for i := 0; i < 16; i++ {
		n, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		b[i] = byte(n)
	}
}

func putGUID(b []byte, s string) {
	putUUID(b, s)
	// first three fields are little-endian on disk
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
}

func buildXFS(uuid, label string) []byte {
	img := make([]byte, 64<<10)
	copy(img, "XFSB")
	binary.BigEndian.PutUint32(img[4:], 4096) // block size
	binary.BigEndian.PutUint64(img[8:], 4096) // data blocks
	putUUID(img[32:], uuid)
	binary.BigEndian.PutUint32(img[80:], 1)    // realtime extent size
	binary.BigEndian.PutUint32(img[84:], 4096) // blocks per AG
	binary.BigEndian.PutUint32(img[88:], 1)    // AG count
	binary.BigEndian.PutUint16(img[100:], 0xb4a5)
	binary.BigEndian.PutUint16(img[102:], 512) // sector size
	binary.BigEndian.PutUint16(img[104:], 512) // inode size
	binary.BigEndian.PutUint16(img[106:], 8)   // inodes per block
	copy(img[108:120], label)
	img[120], img[121], img[122], img[123] = 12, 9, 9, 3 // logs of the above
	img[127] = 25                                        // imax_pct
	return img
}

func buildBtrfs(uuid, label string) []byte {
	img := make([]byte, 1<<20) // blkid wants at least 1 MiB
	sb := img[64<<10:]
	putUUID(sb[0x20:], uuid)
	binary.LittleEndian.PutUint64(sb[0x30:], 64<<10)
	copy(sb[0x40:], "_BHRfS_M")
	binary.LittleEndian.PutUint32(sb[0x90:], 4096)
	copy(sb[0x12b:], label)
	// crc32c of the rest of the 4 KiB superblock, as blkid checks it
	binary.LittleEndian.PutUint32(sb[0:], crc32.Checksum(sb[0x20:0x1000], crc32.MakeTable(crc32.Castagnoli)))
	return img
}

func buildExt(compat, incompat, roCompat uint32, uuid, label string) []byte {
	img := make([]byte, 4096)
	sb := img[1024:]
	binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[92:], compat)
	binary.LittleEndian.PutUint32(sb[96:], incompat)
	binary.LittleEndian.PutUint32(sb[100:], roCompat)
	putUUID(sb[104:], uuid)
	copy(sb[120:136], label)
	return img
}

func buildSquashfs(major uint16) []byte {
	img := make([]byte, 4096)
	copy(img, "hsqs")
	binary.LittleEndian.PutUint16(img[28:], major)
	return img
}

func buildSwap(page int, uuid, label string) []byte {
	img := make([]byte, max(page*2, 10*4096)) // blkid wants 10 pages
	binary.LittleEndian.PutUint32(img[1024:], 1)
	binary.LittleEndian.PutUint32(img[1028:], 1) // last page
	putUUID(img[1036:], uuid)
	copy(img[1052:1068], label)
	copy(img[page-10:], "SWAPSPACE2")
	return img
}

// buildFAT16 makes a small FAT16 boot sector and root directory; dirLabel
// "" leaves the directory without a label entry.
func buildFAT16(serial uint32, bootLabel, dirLabel string) []byte {
	const sectors = 8192
	img := make([]byte, 64<<10)
	bs := img[:512]
	copy(bs, "\xeb\x3c\x90mkfs.fat")
	binary.LittleEndian.PutUint16(bs[0x0b:], 512)
	bs[0x0d] = 1                                  // sectors per cluster
	binary.LittleEndian.PutUint16(bs[0x0e:], 4)   // reserved
	bs[0x10] = 2                                  // FATs
	binary.LittleEndian.PutUint16(bs[0x11:], 512) // root entries
	binary.LittleEndian.PutUint16(bs[0x13:], sectors)
	bs[0x15] = 0xf8
	binary.LittleEndian.PutUint16(bs[0x16:], 32) // sectors per FAT: ~8100 clusters, FAT16
	bs[0x26] = 0x29
	binary.LittleEndian.PutUint32(bs[0x27:], serial)
	copy(bs[0x2b:0x36], pad11(bootLabel))
	copy(bs[0x36:], "FAT16   ")
	bs[510], bs[511] = 0x55, 0xAA
	if dirLabel != "" {
		root := img[fat16RootOffset:]
		copy(root[0:11], pad11(dirLabel))
		root[11] = 0x08
	}
	return img
}

// fat16RootOffset is where buildFAT16's root directory starts: after 4
// reserved sectors and two 32-sector FATs.
const fat16RootOffset = (4 + 2*32) * 512

func pad11(s string) string {
	if s == "" {
		return fatNoName
	}
	return (s + "           ")[:11]
}

// mbrPart is one entry for buildMBR.
type mbrPart struct {
	boot, typ   byte
	start, size uint32
}

func putMBREntry(b []byte, p mbrPart) {
	b[0], b[4] = p.boot, p.typ
	binary.LittleEndian.PutUint32(b[8:], p.start)
	binary.LittleEndian.PutUint32(b[12:], p.size)
}

// buildMBR writes an MBR with a disk signature into a zeroed image.
func buildMBR(img []byte, sig uint32, parts ...mbrPart) []byte {
	binary.LittleEndian.PutUint32(img[440:], sig)
	for i, p := range parts {
		putMBREntry(img[446+16*i:], p)
	}
	img[510], img[511] = 0x55, 0xAA
	return img
}

// gptPart is one entry for buildGPT; index is its slot in the array.
type gptPart struct {
	index             int
	typ, uuid, name   string
	firstLBA, lastLBA uint64
}

// buildGPT writes a protective MBR and a primary GPT (header at LBA 1,
// entries at LBA 2) with correct checksums; count and entrySize are
// written as given, so tests can make them absurd.
func buildGPT(img []byte, ss int, count, entrySize uint32, parts ...gptPart) []byte {
	lastLBA := uint64(len(img)/ss - 1)
	buildMBR(img, 0, mbrPart{typ: 0xEE, start: 1, size: uint32(min(lastLBA, 0xffffffff))})
	h := img[ss : 2*ss]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[24:], 1)
	binary.LittleEndian.PutUint64(h[32:], lastLBA)
	// usable area: after the entries, before the backup entries
	n := (uint64(count)*uint64(entrySize) + uint64(ss) - 1) / uint64(ss)
	if n > lastLBA/4 {
		n = 1 // absurd counts stay absurd, the area stays sane
	}
	binary.LittleEndian.PutUint64(h[40:], 2+n)
	binary.LittleEndian.PutUint64(h[48:], lastLBA-1-n)
	putGUID(h[56:], "01234567-89ab-cdef-0123-456789abcdef")
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], count)
	binary.LittleEndian.PutUint32(h[84:], entrySize)
	entries := img[2*ss:]
	for _, p := range parts {
		e := entries[p.index*int(entrySize):]
		putGUID(e[0:], p.typ)
		putGUID(e[16:], p.uuid)
		binary.LittleEndian.PutUint64(e[32:], p.firstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.lastLBA)
		for i, c := range utf16.Encode([]rune(p.name)) {
			binary.LittleEndian.PutUint16(e[56+2*i:], c)
		}
	}
	fixGPTChecksums(img, ss)
	return img
}

// fixGPTChecksums recomputes the primary header's checksums after a test
// (or the fuzzer) changed it, as far as the image holds the entries.
func fixGPTChecksums(img []byte, ss int) {
	if len(img) < 2*ss {
		return
	}
	h := img[ss : 2*ss]
	if string(h[:8]) != "EFI PART" {
		return
	}
	hsize := int(binary.LittleEndian.Uint32(h[12:]))
	entLBA := binary.LittleEndian.Uint64(h[72:])
	total := uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
	if entLBA < uint64(len(img)/ss) && entLBA*uint64(ss)+total <= uint64(len(img)) {
		off := entLBA * uint64(ss)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(img[off:off+total]))
	}
	if hsize >= 92 && hsize <= ss {
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
	}
}
