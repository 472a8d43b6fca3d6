package blockdev

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Partition is one entry of a partition table, numbered as the kernel
// numbers the partition devices (vda1, vda2, ...).
type Partition struct {
	Number      int
	Start, Size uint64 // bytes
	UUID        string // PARTUUID: GPT GUID lower-case, or MBR "ssssssss-pp"
	Label       string // GPT partition name
	Type        string // GPT type GUID lower-case, or MBR type as "0x83"
}

// Partitions reads the partition table at the start of r, a whole disk of
// size bytes (0 if unknown): a GPT (behind a protective MBR, primary header
// at LBA 1 or the backup at the last LBA, 512- or 4096-byte sectors) or an
// MBR with its extended partitions. scheme is "gpt", "dos", or "" when
// there is no table; err is set when a table is there but unreadable.
//
// The work is bounded whatever the table says, since the init reads it at
// boot: at most 1+maxLogical reads for an MBR (the boot sector and the
// extended boot records of all extended partitions together) and 7 for a
// GPT (the boot sector, then per sector size tried the primary and backup
// headers and one entry array of at most maxGPTEntries bytes).
func Partitions(r io.ReaderAt, size int64) (scheme string, parts []Partition, err error) {
	return partitions(r, size, 0)
}

// partitions is Partitions with a known logical sector size (0: try 512
// then 4096 for GPT, 512 for MBR).
func partitions(r io.ReaderAt, size int64, sectorSize int64) (string, []Partition, error) {
	mbr, err := readAt(r, 0, 512)
	if err != nil {
		if isShort(err) {
			return "", nil, nil
		}
		return "", nil, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return "", nil, nil
	}
	var ents [4]mbrEntry
	protective := false
	for i := range ents {
		ents[i] = parseMBREntry(mbr[446+16*i:])
		if ents[i].typ == 0xEE {
			protective = true
		}
	}
	if protective {
		sizes := []int64{512, 4096}
		if sectorSize > 0 {
			sizes = []int64{sectorSize}
		}
		var errs []error
		for _, ss := range sizes {
			parts, err := readGPT(r, size, ss)
			if err == nil {
				return "gpt", parts, nil
			}
			errs = append(errs, fmt.Errorf("%d-byte sectors: %w", ss, err))
		}
		return "", nil, fmt.Errorf("protective MBR without a valid GPT: %w", errors.Join(errs...))
	}
	// With the 0x55AA in place this is either an MBR or the boot sector
	// of a FAT filesystem written straight onto the disk (whose boot code
	// may even hold a fake partition entry). Reject it as a table when the
	// boot flags are not 0 or 0x80, or when it is a valid FAT boot sector.
	for _, e := range ents {
		if e.boot != 0 && e.boot != 0x80 {
			return "", nil, nil
		}
	}
	if _, ok := parseFATBoot(mbr); ok {
		return "", nil, nil
	}
	if sectorSize <= 0 {
		sectorSize = 512
	}
	return "dos", parseDOS(r, size, sectorSize, mbr, ents), nil
}

type mbrEntry struct {
	boot, typ   byte
	start, size uint64 // sectors
}

func parseMBREntry(b []byte) mbrEntry {
	return mbrEntry{boot: b[0], typ: b[4], start: uint64(le32(b[8:])), size: uint64(le32(b[12:]))}
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0f || typ == 0x85 }

// Limits on what a table can make us do, whatever it says.
const (
	maxLogical    = 256     // extended boot records read, all extended partitions together
	maxGPTEntries = 1 << 20 // bytes of GPT entry array read
)

// parseDOS lists the primary partitions as slots 1-4 and the logical ones
// from 5 on, in chain order, as the kernel numbers them.
func parseDOS(r io.ReaderAt, size, ss int64, mbr []byte, ents [4]mbrEntry) []Partition {
	sig := le32(mbr[440:])
	mk := func(n int, start, length uint64, typ byte) Partition {
		return Partition{
			Number: n,
			Start:  start * uint64(ss),
			Size:   length * uint64(ss),
			UUID:   fmt.Sprintf("%08x-%02x", sig, n),
			Type:   fmt.Sprintf("0x%x", typ),
		}
	}
	var parts []Partition
	next := 5
	budget := maxLogical // EBR reads left, shared by every extended partition
	for i, e := range ents {
		// The kernel skips only empty slots; an entry of type 0 with a
		// size still becomes a device.
		if e.size == 0 {
			continue
		}
		parts = append(parts, mk(i+1, e.start, e.size, e.typ))
		if isExtended(e.typ) {
			parts = append(parts, parseExtended(r, size, ss, e.start, e.size, &next, &budget, mk)...)
		}
	}
	return parts
}

// parseExtended walks the chain of extended boot records inside the
// extended partition at extStart (sectors). Each EBR holds data entries
// relative to itself and a link relative to the extended partition.
// budget is the number of EBRs still to be read; each read takes one.
func parseExtended(r io.ReaderAt, size, ss int64, extStart, extSize uint64, next, budget *int,
	mk func(int, uint64, uint64, byte) Partition) []Partition {
	var parts []Partition
	this, thisSize := extStart, extSize
	seen := map[uint64]bool{}
	for *budget > 0 {
		if seen[this] || *next > maxLogical+4 {
			break
		}
		seen[this] = true
		off := this * uint64(ss)
		if off > 1<<62 || (size > 0 && off >= uint64(size)) {
			break
		}
		*budget--
		ebr, err := readAt(r, int64(off), 512)
		if err != nil || ebr[510] != 0x55 || ebr[511] != 0xAA {
			break
		}
		var link *mbrEntry
		for i := range 4 {
			e := parseMBREntry(ebr[446+16*i:])
			if e.size == 0 {
				continue
			}
			if isExtended(e.typ) {
				if link == nil {
					link = &e
				}
				continue
			}
			// Entries 3 and 4 of an EBR often hold garbage: take them only
			// when they lie inside this EBR's part of the extended
			// partition, as the kernel does.
			if i >= 2 && (e.start+e.size > thisSize || this+e.start+e.size > extStart+extSize) {
				continue
			}
			parts = append(parts, mk(*next, this+e.start, e.size, e.typ))
			*next++
		}
		if link == nil {
			break
		}
		this, thisSize = extStart+link.start, link.size
	}
	return parts
}

// readGPT reads the primary GPT header at LBA 1, or the backup at the last
// LBA when the primary is damaged, and the entry array it points to.
func readGPT(r io.ReaderAt, size, ss int64) ([]Partition, error) {
	lastLBA := uint64(0) // unknown
	if size >= 2*ss {
		lastLBA = uint64(size/ss) - 1
	}
	h, err := readGPTHeader(r, 1, ss, lastLBA)
	if err != nil && lastLBA > 1 {
		var err2 error
		if h, err2 = readGPTHeader(r, lastLBA, ss, lastLBA); err2 != nil {
			return nil, fmt.Errorf("primary header: %w; backup header: %v", err, err2)
		}
	} else if err != nil {
		return nil, err
	}
	total := uint64(h.count) * uint64(h.entrySize)
	if total > maxGPTEntries {
		return nil, fmt.Errorf("entry array of %d×%d bytes is too large", h.count, h.entrySize)
	}
	off := h.entriesLBA * uint64(ss)
	if h.entriesLBA > 1<<48 || (size > 0 && off+total > uint64(size)) {
		return nil, fmt.Errorf("entry array at LBA %d is past the end of the disk", h.entriesLBA)
	}
	buf, err := readAt(r, int64(off), int(total))
	if err != nil {
		return nil, fmt.Errorf("reading entries: %w", err)
	}
	if crc32.ChecksumIEEE(buf) != h.entriesCRC {
		return nil, errors.New("entry array checksum mismatch")
	}
	var parts []Partition
	for i := range int(h.count) {
		e := buf[i*int(h.entrySize):][:128]
		if allZero(e[0:16]) {
			continue // unused entry
		}
		first, last := le64(e[32:]), le64(e[40:])
		if first > last || (lastLBA > 0 && last > lastLBA) {
			continue // the kernel ignores these too
		}
		parts = append(parts, Partition{
			Number: i + 1,
			Start:  first * uint64(ss),
			Size:   (last - first + 1) * uint64(ss),
			UUID:   formatGUID(e[16:32]),
			Label:  gptName(e[56:128]),
			Type:   formatGUID(e[0:16]),
		})
	}
	return parts, nil
}

type gptHeader struct {
	entriesLBA       uint64
	count, entrySize uint32
	entriesCRC       uint32
}

func readGPTHeader(r io.ReaderAt, lba uint64, ss int64, lastLBA uint64) (gptHeader, error) {
	var h gptHeader
	if lba > 1<<48 {
		return h, errors.New("header LBA out of range")
	}
	b, err := readAt(r, int64(lba)*ss, int(ss))
	if err != nil {
		return h, err
	}
	if string(b[0:8]) != "EFI PART" {
		return h, errors.New("no GPT signature")
	}
	hsize := le32(b[12:])
	if hsize < 92 || int64(hsize) > ss {
		return h, fmt.Errorf("bad header size %d", hsize)
	}
	hdr := append([]byte(nil), b[:hsize]...)
	want := le32(hdr[16:])
	copy(hdr[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(hdr) != want {
		return h, errors.New("header checksum mismatch")
	}
	if my := le64(b[24:]); my != lba {
		return h, fmt.Errorf("header at LBA %d says it is at LBA %d", lba, my)
	}
	firstUsable, lastUsable := le64(b[40:]), le64(b[48:])
	if firstUsable > lastUsable || (lastLBA > 0 && lastUsable > lastLBA) {
		return h, fmt.Errorf("usable LBAs %d-%d do not fit the disk", firstUsable, lastUsable)
	}
	h.entriesLBA = le64(b[72:])
	h.count = le32(b[80:])
	h.entrySize = le32(b[84:])
	h.entriesCRC = le32(b[88:])
	// The spec allows larger entries, but neither the kernel nor blkid
	// reads them, so a table with them yields no partition devices.
	if h.entrySize != 128 {
		return h, fmt.Errorf("entry size %d, not 128", h.entrySize)
	}
	return h, nil
}

// formatGUID formats an on-disk (mixed-endian) GUID as lower-case text.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le32(b[0:]), le16(b[4:]), le16(b[6:]), b[8:10], b[10:16])
}

// gptName decodes a UTF-16LE partition name, up to the first NUL, with
// trailing white space removed as blkid does.
func gptName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := le16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.TrimRight(string(utf16.Decode(u)), " \t\n\r\v\f")
}
