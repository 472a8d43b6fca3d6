package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// fsInfo is what one probe found.
type fsInfo struct {
	Type, UUID, Label string
}

// fsProbe recognises one filesystem. It returns nil, nil when the bytes
// are not that filesystem, and an error only when reading failed.
type fsProbe struct {
	name  string
	probe func(io.ReaderAt) (*fsInfo, error)
}

// fsProbes in the order they are tried: the ones with long magic numbers
// first, vfat last because a FAT boot sector has only a weak signature and
// an MBR carries the same 0x55AA.
var fsProbes = []fsProbe{
	{"squashfs", probeSquashfs},
	{"xfs", probeXFS},
	{"ext", probeExt},
	{"btrfs", probeBtrfs},
	{"swap", probeSwap},
	{"vfat", probeVFAT},
}

// ProbeFS reads a filesystem superblock from r and returns the type, UUID
// and label as blkid would print them. Unknown contents give empty strings
// and a nil error; err is non-nil only when nothing was recognised and a
// read failed for a reason other than the device being too small.
func ProbeFS(r io.ReaderAt) (fstype, uuid, label string, err error) {
	var errs []error
	for _, p := range fsProbes {
		fs, err := p.probe(r)
		if err != nil {
			if !isShort(err) {
				errs = append(errs, fmt.Errorf("probing %s: %w", p.name, err))
			}
			continue
		}
		if fs != nil {
			return fs.Type, fs.UUID, fs.Label, nil
		}
	}
	return "", "", "", errors.Join(errs...)
}

// maxRead bounds any single read; every caller passes a constant or a value
// already checked against it.
const maxRead = 1 << 20

// readAt reads exactly n bytes at off. A read past the end gives
// io.ErrUnexpectedEOF.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	if n < 0 || n > maxRead || off < 0 {
		return nil, fmt.Errorf("read of %d bytes at %d: out of bounds", n, off)
	}
	buf := make([]byte, n)
	m, err := r.ReadAt(buf, off)
	if m == n {
		return buf, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// isShort reports whether err only means the device ended before the
// structure a probe looked for.
func isShort(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func isPow2(x uint64) bool { return x != 0 && x&(x-1) == 0 }

// formatUUID formats 16 bytes the way blkid does (lower-case 8-4-4-4-12,
// in byte order), or "" when they are all zero, which blkid does not print.
func formatUUID(b []byte) string {
	if len(b) != 16 || allZero(b) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// label turns a fixed-size on-disk label into the string blkid prints: up
// to the first NUL, trailing white space removed.
func label(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " \t\n\r\v\f")
}

// ext2/3/4: the superblock is at 1024, magic 0xEF53 at 56 within it.
const (
	extSuperOffset = 1024

	extCompatHasJournal = 0x0004

	extIncompatFiletype   = 0x0002
	extIncompatRecover    = 0x0004
	extIncompatJournalDev = 0x0008
	extIncompatMetaBG     = 0x0010

	extROCompatSparseSuper = 0x0001
	extROCompatLargeFile   = 0x0002
	extROCompatBtreeDir    = 0x0004

	// Feature sets the ext2 and ext3 drivers understood; anything beyond
	// them (extents, flex_bg, 64bit, huge_file, metadata_csum, ...) makes
	// the filesystem ext4, as blkid decides.
	ext2IncompatSupp = extIncompatFiletype | extIncompatMetaBG
	ext3IncompatSupp = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	ext23ROSupp      = extROCompatSparseSuper | extROCompatLargeFile | extROCompatBtreeDir
)

func probeExt(r io.ReaderAt) (*fsInfo, error) {
	sb, err := readAt(r, extSuperOffset, 256)
	if err != nil {
		return nil, err
	}
	if le16(sb[56:]) != 0xEF53 {
		return nil, nil
	}
	t := extType(le32(sb[92:]), le32(sb[96:]), le32(sb[100:]))
	return &fsInfo{Type: t, UUID: formatUUID(sb[104:120]), Label: label(sb[120:136])}, nil
}

// extType names an ext filesystem from its compat, incompat and ro_compat
// feature words the way blkid does: "jbd" for an external journal, ext2
// without a journal and with only ext2 features, ext3 with a journal and
// only ext3 features, ext4 for everything else.
func extType(compat, incompat, roCompat uint32) string {
	switch {
	case incompat&extIncompatJournalDev != 0:
		return "jbd"
	case roCompat&^ext23ROSupp != 0:
		return "ext4"
	case compat&extCompatHasJournal == 0 && incompat&^ext2IncompatSupp == 0:
		return "ext2"
	case compat&extCompatHasJournal != 0 && incompat&^ext3IncompatSupp == 0:
		return "ext3"
	default:
		return "ext4"
	}
}

// squashfs: "hsqs" at 0, major version at 28. Squashfs has no UUID or label.
func probeSquashfs(r io.ReaderAt) (*fsInfo, error) {
	sb, err := readAt(r, 0, 96)
	if err != nil {
		return nil, err
	}
	if string(sb[0:4]) != "hsqs" {
		return nil, nil
	}
	if le16(sb[28:]) < 4 {
		return &fsInfo{Type: "squashfs3"}, nil
	}
	return &fsInfo{Type: "squashfs"}, nil
}

// xfs: big-endian superblock at 0, "XFSB", UUID at 32, 12-byte label at
// 108. The magic alone is too little to trust, so the geometry must be
// consistent as blkid requires: sizes matching their logs, the data block
// count fitting the allocation groups.
func probeXFS(r io.ReaderAt) (*fsInfo, error) {
	sb, err := readAt(r, 0, 512)
	if err != nil {
		return nil, err
	}
	if string(sb[0:4]) != "XFSB" || !xfsGeometryOK(sb) {
		return nil, nil
	}
	return &fsInfo{Type: "xfs", UUID: formatUUID(sb[32:48]), Label: label(sb[108:120])}, nil
}

func xfsGeometryOK(sb []byte) bool {
	var (
		blockSize  = uint64(be32(sb[4:]))
		dblocks    = binary.BigEndian.Uint64(sb[8:])
		rextSize   = uint64(be32(sb[80:]))
		agBlocks   = uint64(be32(sb[84:]))
		agCount    = uint64(be32(sb[88:]))
		sectSize   = uint64(be16(sb[102:]))
		inodeSize  = uint64(be16(sb[104:]))
		blockLog   = uint64(sb[120])
		sectLog    = uint64(sb[121])
		inodeLog   = uint64(sb[122])
		inopbLog   = uint64(sb[123])
		imaxPct    = sb[127]
		rextBytes  = rextSize * blockSize
		inRange    = func(v, lo, hi uint64) bool { return v >= lo && v <= hi }
		sizeAndLog = func(size, log, lo, hi uint64) bool { return inRange(log, lo, hi) && size == 1<<log }
	)
	return agCount > 0 &&
		sizeAndLog(sectSize, sectLog, 9, 15) &&
		sizeAndLog(blockSize, blockLog, 9, 16) &&
		sizeAndLog(inodeSize, inodeLog, 8, 11) &&
		blockLog >= inodeLog && blockLog-inodeLog == inopbLog &&
		inRange(rextBytes, 4<<10, 1<<30) &&
		imaxPct <= 100 &&
		dblocks != 0 && dblocks <= agCount*agBlocks && dblocks >= (agCount-1)*agBlocks+64
}

// btrfs: superblock at 64 KiB, magic "_BHRfS_M" at 0x40, fsid at 0x20,
// 256-byte label at 0x12b.
func probeBtrfs(r io.ReaderAt) (*fsInfo, error) {
	sb, err := readAt(r, 64<<10, 0x12b+256)
	if err != nil {
		return nil, err
	}
	if string(sb[0x40:0x48]) != "_BHRfS_M" {
		return nil, nil
	}
	return &fsInfo{Type: "btrfs", UUID: formatUUID(sb[0x20:0x30]), Label: label(sb[0x12b : 0x12b+256])}, nil
}

// swap: "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10 bytes of the
// first page, for any page size Linux has used. Version 1 headers at 1024
// carry a UUID at 1036 and a 16-byte label at 1052; like blkid, trust
// them only when the padding after them is clean.
func probeSwap(r io.ReaderAt) (*fsInfo, error) {
	for _, page := range []int64{4096, 8192, 16384, 32768, 65536} {
		sig, err := readAt(r, page-10, 10)
		if err != nil {
			if isShort(err) {
				break // larger pages are further out still
			}
			return nil, err
		}
		switch string(sig) {
		case "SWAP-SPACE":
			return &fsInfo{Type: "swap"}, nil
		case "SWAPSPACE2":
			h, err := readAt(r, 1024, 180)
			if err != nil {
				return nil, err
			}
			if v := le32(h[0:]); v != 1 && v != 1<<24 {
				return nil, nil // wrong version
			}
			if le32(h[4:]) == 0 {
				return nil, nil // no pages
			}
			fs := &fsInfo{Type: "swap"}
			if allZero(h[44+32*4 : 44+34*4]) {
				fs.UUID, fs.Label = formatUUID(h[12:28]), label(h[28:44])
			}
			return fs, nil
		}
	}
	return nil, nil
}

// FAT

// fatNoName is the label FAT tools write when there is none.
const fatNoName = "NO NAME    "

// fatMaxDirEntries bounds the root directory entries read looking for a
// label: the most a FAT12/16 root can hold.
const fatMaxDirEntries = 1 << 16

// fatGeometry is what the BIOS parameter block says.
type fatGeometry struct {
	sectorSize   uint64
	clusterSize  uint64 // sectors
	reserved     uint64 // sectors
	fats         uint64
	rootEntries  uint64
	fatLength    uint64 // sectors per FAT
	fat32        bool
	clusterCount uint64
}

// fatMagic reports whether a boot sector carries one of the FAT type
// strings, which make the weaker checks unnecessary.
func fatMagic(bs []byte) bool {
	at := func(off int, s string) bool { return string(bs[off:off+len(s)]) == s }
	return at(0x52, "MSWIN") || at(0x52, "FAT32   ") ||
		at(0x36, "MSDOS") || at(0x36, "FAT16   ") || at(0x36, "FAT12   ") || at(0x36, "FAT     ")
}

// parseFATBoot validates a FAT boot sector (512 bytes) the way blkid does
// and returns its geometry, or false when it is not FAT.
func parseFATBoot(bs []byte) (fatGeometry, bool) {
	var g fatGeometry
	if len(bs) < 512 {
		return g, false
	}
	if !fatMagic(bs) {
		// Without a type string only the boot signature is left; old
		// floppies have it, as does every MBR, so the BPB checks below
		// have to tell them apart. JFS and HPFS put a FAT-like header
		// into their first sector.
		if bs[510] != 0x55 || bs[511] != 0xAA {
			return g, false
		}
		if t := string(bs[0x36:0x3e]); t == "JFS     " || t == "HPFS    " {
			return g, false
		}
	}
	g.sectorSize = uint64(le16(bs[0x0b:]))
	g.clusterSize = uint64(bs[0x0d])
	g.reserved = uint64(le16(bs[0x0e:]))
	g.fats = uint64(bs[0x10])
	g.rootEntries = uint64(le16(bs[0x11:]))
	media := bs[0x15]
	if g.fats == 0 || g.reserved == 0 || !(media >= 0xf8 || media == 0xf0) ||
		!isPow2(g.clusterSize) ||
		!isPow2(g.sectorSize) || g.sectorSize < 512 || g.sectorSize > 4096 {
		return g, false
	}
	sectors := uint64(le16(bs[0x13:]))
	if sectors == 0 {
		sectors = uint64(le32(bs[0x20:]))
	}
	g.fatLength = uint64(le16(bs[0x16:]))
	if g.fatLength == 0 {
		g.fatLength = uint64(le32(bs[0x24:]))
		g.fat32 = true
	}
	if g.fatLength == 0 {
		return g, false
	}
	rootSectors := (g.rootEntries*32 + g.sectorSize - 1) / g.sectorSize
	meta := g.reserved + g.fats*g.fatLength + rootSectors
	if meta > sectors {
		return g, false
	}
	g.clusterCount = (sectors - meta) / g.clusterSize
	maxClusters := uint64(0x0FFFFFF6) // FAT32
	if !g.fat32 {
		maxClusters = 0xFF4 // FAT12
		if g.clusterCount > maxClusters {
			maxClusters = 0xFFF4 // FAT16
		}
	}
	if g.clusterCount > maxClusters {
		return g, false
	}
	return g, true
}

func probeVFAT(r io.ReaderAt) (*fsInfo, error) {
	bs, err := readAt(r, 0, 512)
	if err != nil {
		return nil, err
	}
	g, ok := parseFATBoot(bs)
	if !ok {
		return nil, nil
	}
	var dirLabel []byte
	var bootLabel, serial []byte
	if !g.fat32 {
		rootStart := (g.reserved + g.fats*g.fatLength) * g.sectorSize
		dirLabel = fatDirLabel(r, rootStart, g.rootEntries)
		bootLabel, serial = bs[0x2b:0x36], bs[0x27:0x2b]
	} else {
		if !fatFSInfoOK(r, bs, g) {
			return nil, nil
		}
		dirLabel = fat32RootLabel(r, bs, g)
		bootLabel, serial = bs[0x47:0x52], bs[0x43:0x47]
	}
	// The root directory's volume label entry is what tools such as
	// fatlabel and Windows change; the boot sector copy may be stale.
	l := dirLabel
	if l == nil || string(l) == fatNoName {
		l = bootLabel
	}
	fs := &fsInfo{Type: "vfat"}
	if string(l) != fatNoName {
		fs.Label = label(l)
	}
	if !allZero(serial) {
		fs.UUID = fmt.Sprintf("%02X%02X-%02X%02X", serial[3], serial[2], serial[1], serial[0])
	}
	return fs, nil
}

// fatFSInfoOK checks the FAT32 FSInfo sector's signatures, accepting the
// all-zero ones some formatters leave.
func fatFSInfoOK(r io.ReaderAt, bs []byte, g fatGeometry) bool {
	sect := uint64(le16(bs[0x30:]))
	if sect == 0 {
		return true
	}
	fi, err := readAt(r, int64(sect*g.sectorSize), 512)
	if err != nil {
		return false
	}
	s1, s2 := string(fi[0:4]), string(fi[484:488])
	return (s1 == "RRaA" || s1 == "RRdA" || s1 == "\x00\x00\x00\x00") &&
		(s2 == "rrAa" || s2 == "\x00\x00\x00\x00")
}

// fat32RootLabel follows the FAT32 root directory's cluster chain, at most
// 100 clusters as blkid does and at most fatMaxDirEntries entries in all
// (so a hostile chain costs 2 MiB of reads, not 50), looking for the
// volume label entry.
func fat32RootLabel(r io.ReaderAt, bs []byte, g fatGeometry) []byte {
	perCluster := g.clusterSize * g.sectorSize / 32
	dataStart := g.reserved + g.fats*g.fatLength // sectors
	fatEntries := g.fatLength * g.sectorSize / 4
	next := uint64(le32(bs[0x2c:]))
	budget := uint64(fatMaxDirEntries)
	for range 100 {
		if next < 2 || next >= fatEntries || budget == 0 {
			return nil
		}
		off := (dataStart + (next-2)*g.clusterSize) * g.sectorSize
		n := min(perCluster, budget)
		budget -= n
		if l := fatDirLabel(r, off, n); l != nil {
			return l
		}
		e, err := readAt(r, int64(g.reserved*g.sectorSize+next*4), 4)
		if err != nil {
			return nil
		}
		next = uint64(le32(e) & 0x0FFFFFFF)
	}
	return nil
}

// fatDirLabel scans up to entries 32-byte directory entries at off for a
// volume label, stopping at the end-of-directory marker. Read errors just
// mean no label from the directory.
func fatDirLabel(r io.ReaderAt, off, entries uint64) []byte {
	const chunk = 512 // entries per read: 16 KiB
	entries = min(entries, fatMaxDirEntries)
	if off > 1<<62 {
		return nil
	}
	for done := uint64(0); done < entries; {
		n := min(entries-done, chunk)
		buf, err := readAt(r, int64(off+done*32), int(n*32))
		if err != nil {
			return nil
		}
		for i := uint64(0); i < n; i++ {
			e := buf[i*32 : i*32+32]
			switch {
			case e[0] == 0x00:
				return nil
			case e[0] == 0xe5, // deleted
				le16(e[20:]) != 0 || le16(e[26:]) != 0, // has clusters: a file
				e[11]&0x3f == 0x0f:                     // long-name part
				continue
			case e[11]&(0x08|0x10) == 0x08: // volume id, not a directory
				return append([]byte(nil), e[:11]...)
			}
		}
		done += n
	}
	return nil
}
