// Package diskimage builds a flashable SD/eMMC disk image for a board: a
// partition table (MBR with a real disk signature, or GPT), a FAT boot
// partition holding the kernel, the device tree, the ofsroot initramfs, a
// cmdline.txt and an extlinux.conf, the root partition (ext4 made by
// e2fsprogs' `mkfs.ext4 -d`, or squashfs made by mksquashfs), and an
// optional empty ext4 data partition.
//
// What is made by which tool, and why:
//   - the partition tables by go-diskfs (MBR: the disk signature at 0x1B8,
//     which go-diskfs leaves zero, is written here, or PARTUUID= booting
//     cannot work);
//   - FAT by mkfs.vfat --invariant and mcopy -m. go-diskfs v1.9.4's FAT32
//     writer was measured against them on a 64 MiB partition with a
//     kernel, a 2 MB initramfs and a folder: with Reproducible set, two
//     runs still gave different bytes, fsck.fat -n reported "129024
//     clusters but only space for 129022 FAT entries", its volume ID is
//     0 rather than ours (so the patch stays), and it took about 4x the
//     CPU time (0.17 s against 0.04 s). Kept: the tools.
//   - ext4 by mkfs.ext4 -d (go-diskfs' ext4 writer has open corruption
//     bugs and keeps no owners), with debugfs pinning the time stamps
//     mke2fs copies from the host;
//   - squashfs by mksquashfs, which keeps owners, modes, device nodes and
//     xattrs and is reproducible under SOURCE_DATE_EPOCH (go-diskfs'
//     squashfs writer copies from a workspace folder and was not shown to
//     keep device nodes and xattrs).
//
// A root given as a tar archive is unpacked by GNU tar as root
// (--numeric-owner --xattrs) into a temporary folder first: e2fsprogs
// 1.47.0 (Debian 12) has no tar input to mkfs.ext4 -d (1.47.1 has).
//
// The same inputs and SourceDateEpoch give the same bytes: identifiers
// (disk signature, GPT GUIDs, filesystem UUIDs) are derived from the
// inputs, and every time stamp the tools write is pinned.
package diskimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MiB is the alignment of every partition and of every computed size.
const MiB = 1 << 20

// Roles of the partitions, in disk order.
const (
	RoleBoot = "boot"
	RoleRoot = "root"
	RoleData = "data"
)

// Margins used when a size is computed from the contents.
const (
	// BootMargin: the boot partition holds its files plus 25% plus 8 MiB,
	// at least BootMin (room for a second kernel during an update).
	BootMarginPercent = 25
	BootMarginBytes   = 8 * MiB
	BootMin           = 32 * MiB
	// The ext4 root holds its files (in 4 KiB blocks) plus 25% plus 16
	// MiB for the journal and metadata, at least RootMin.
	RootMarginPercent = 25
	RootMarginBytes   = 16 * MiB
	RootMin           = 32 * MiB
)

// Partition is one planned or built partition.
type Partition struct {
	Number int
	Role   string // RoleBoot, RoleRoot, RoleData
	Start  int64  // bytes
	Size   int64  // bytes
	FSType string // vfat, ext4, squashfs
	// PartUUID is the kernel's PARTUUID: "ssssssss-pp" on MBR, the GPT
	// partition GUID (lower case) on GPT.
	PartUUID string
	// FSUUID and Label of the filesystem (vfat: XXXX-XXXX).
	FSUUID string
	Label  string
}

// Layout is the partition plan of a disk.
type Layout struct {
	Table      string // "mbr" or "gpt"
	SizeBytes  int64
	DiskID     string // MBR signature (8 hex digits) or GPT disk GUID
	Partitions []Partition
}

// Partition returns the partition with role r.
func (l Layout) Partition(r string) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Role == r {
			return p, true
		}
	}
	return Partition{}, false
}

// alignUp rounds n up to a multiple of MiB.
func alignUp(n int64) int64 { return (n + MiB - 1) / MiB * MiB }

// BootSize is the computed size of a boot partition holding contentBytes.
func BootSize(contentBytes int64) int64 {
	n := alignUp(contentBytes + contentBytes*BootMarginPercent/100 + BootMarginBytes)
	return max(n, BootMin)
}

// RootSize is the computed size of an ext4 root holding blocks4k 4-KiB
// blocks of data in inodes entries.
func RootSize(blocks4k, inodes int64) int64 {
	data := blocks4k * 4096
	n := alignUp(data + data*RootMarginPercent/100 + inodes*256 + RootMarginBytes)
	return max(n, RootMin)
}

// PlanSpec is what Plan needs.
type PlanSpec struct {
	Table              string // "mbr" or "gpt"
	BootSize, RootSize int64  // bytes, multiples of MiB
	DataSize           int64  // 0: no data partition
	RootFSType         string // ext4 or squashfs
	PowerOfTwo         bool   // round the disk up to a power of two
	// Seed makes the identifiers: the same seed, the same IDs.
	Seed string
}

// gptOverhead is what GPT needs at the end of the disk: the backup
// header and partition array (33 sectors), rounded to the alignment.
const gptOverhead = MiB

// Plan lays the partitions out from 1 MiB on, each aligned to 1 MiB.
func Plan(s PlanSpec) (Layout, error) {
	switch s.Table {
	case "mbr", "gpt":
	default:
		return Layout{}, fmt.Errorf("partition table %q: want mbr or gpt", s.Table)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"boot", s.BootSize}, {"root", s.RootSize}, {"data", s.DataSize}} {
		if v.n < 0 || v.n%MiB != 0 || (v.n == 0 && v.name != "data") {
			return Layout{}, fmt.Errorf("%s partition size %d: want a positive multiple of 1 MiB", v.name, v.n)
		}
	}
	l := Layout{Table: s.Table}
	if s.Table == "mbr" {
		l.DiskID = derive(s.Seed, "mbr-disk-signature")[:8]
		if l.DiskID == "00000000" {
			l.DiskID = "00000001"
		}
	} else {
		l.DiskID = deriveGUID(s.Seed, "gpt-disk")
	}
	off := int64(MiB)
	add := func(role, fstype string, size int64) {
		p := Partition{Number: len(l.Partitions) + 1, Role: role, Start: off, Size: size, FSType: fstype}
		if s.Table == "mbr" {
			p.PartUUID = fmt.Sprintf("%s-%02d", l.DiskID, p.Number)
		} else {
			p.PartUUID = deriveGUID(s.Seed, "gpt-part-"+role)
		}
		switch fstype {
		case "vfat":
			v := strings.ToUpper(derive(s.Seed, "vfat-"+role)[:8])
			p.FSUUID = v[:4] + "-" + v[4:]
			p.Label = "BOOT"
		case "ext4":
			p.FSUUID = deriveGUID(s.Seed, "ext4-"+role)
			p.Label = role
		case "squashfs":
			// squashfs has neither UUID nor label.
		}
		l.Partitions = append(l.Partitions, p)
		off += size
	}
	add(RoleBoot, "vfat", s.BootSize)
	add(RoleRoot, s.RootFSType, s.RootSize)
	if s.DataSize > 0 {
		add(RoleData, "ext4", s.DataSize)
	}
	size := off
	if s.Table == "gpt" {
		size += gptOverhead
	}
	if s.PowerOfTwo {
		p := int64(1)
		for p < size {
			p <<= 1
		}
		size = p
	}
	l.SizeBytes = size
	return l, nil
}

// derive returns 64 hex digits that depend only on seed and what.
func derive(seed, what string) string {
	h := sha256.Sum256([]byte("ofsroot diskimage\x00" + seed + "\x00" + what))
	return hex.EncodeToString(h[:])
}

// deriveGUID returns a random-looking (version 4, RFC 4122 variant)
// GUID that depends only on seed and what.
func deriveGUID(seed, what string) string {
	h := sha256.Sum256([]byte("ofsroot diskimage\x00" + seed + "\x00" + what))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// DefaultCmdline are the ofsroot words every built image boots with.
var DefaultCmdline = []string{"overlayfs=yes", "ofs-size=20"}

// Cmdline is the kernel command line for the image: the console, the
// root by PARTUUID, its type, rootwait, then extra (DefaultCmdline when
// nil).
func Cmdline(console string, root Partition, extra []string) string {
	if extra == nil {
		extra = DefaultCmdline
	}
	words := []string{}
	if console != "" {
		words = append(words, "console="+console)
	}
	words = append(words, "root=PARTUUID="+root.PartUUID, "rootfstype="+root.FSType, "ro", "rootwait")
	return strings.Join(append(words, extra...), " ")
}

// Boot-partition file names.
const (
	KernelFile  = "vmlinuz"
	InitrdFile  = "initrd.img"
	CmdlineFile = "cmdline.txt"
	ExtlinuxDir = "extlinux"
	// ExtlinuxFile is what U-Boot's distro boot and syslinux-style
	// loaders look for.
	ExtlinuxFile = "extlinux/extlinux.conf"
)

// Extlinux is the extlinux.conf for the image: one entry booting the
// kernel, the initramfs and the device tree (if any) with cmdline.
func Extlinux(boardName, dtb, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ofsroot image for board %s.\n", boardName)
	b.WriteString("# The real root is mounted read-only under a RAM overlay (overlayfs=yes).\n")
	b.WriteString("# For a writable boot, use overlayfs=no.\n")
	b.WriteString("default ofsroot\nmenu title ofsroot\ntimeout 10\n\n")
	b.WriteString("label ofsroot\n")
	fmt.Fprintf(&b, "    kernel /%s\n", KernelFile)
	fmt.Fprintf(&b, "    initrd /%s\n", InitrdFile)
	if dtb != "" {
		fmt.Fprintf(&b, "    fdt /%s\n", dtb)
	}
	fmt.Fprintf(&b, "    append %s\n", cmdline)
	return b.String()
}
