// Package blockdev finds the root device without udev.
//
// Scan lists the block devices the kernel shows in sysfs and reads what
// their own bytes say: filesystem type, UUID and label (ProbeFS), and for
// partitions the PARTUUID and PARTLABEL from the parent disk's partition
// table (Partitions). It also composes the names udev would have made under
// /dev/disk/by-path. Resolve then picks the device a root= or fstab spec
// names, in any of the forms the kernel, the initramfs tools and udev's
// /dev/disk links accept.
//
// The parsers (ProbeFS, Partitions, Resolve, Summary) are pure and take an
// io.ReaderAt or values; only Scan, in scan_linux.go, touches /sys and /dev,
// and it takes both folders as arguments so tests can hand it a fake tree.
// Nothing here trusts a length or count read from a disk: PID 1 must not
// crash or allocate without bound over a corrupt partition table.
package blockdev

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotFound is wrapped by Resolve when no device matches the spec.
var ErrNotFound = errors.New("no such block device")

// Device is one block device (whole disk or partition) as seen in sysfs
// plus what its own bytes say.
type Device struct {
	Name         string // kernel name: "vda1", "mmcblk3p2"
	Path         string // node under the dev folder: "/dev/vda1"
	Major, Minor uint32
	Size         uint64 // bytes (sysfs size * 512)
	Partition    int    // partition number, 0 for a whole disk
	Disk         string // kernel name of the whole disk ("vda") for partitions, "" for disks

	FSType string // "ext2","ext3","ext4","vfat","squashfs","btrfs","xfs","swap", "" unknown
	UUID   string // filesystem UUID as blkid prints it
	Label  string // filesystem label

	PartUUID  string // GPT partition GUID lower-case, or MBR "ssssssss-pp", as the kernel and blkid print PARTUUID
	PartLabel string // GPT partition name

	// PTType is the partition table on a whole disk: "dos", "gpt" or "".
	PTType string

	ByPath []string // udev-style by-path names, e.g. "pci-0000:00:04.0-part1"

	// ProbeError says why the device's bytes (or, for a partition, its
	// disk's partition table) could not be read; "" when they were.
	ProbeError string
}

// Summary formats devs for an error message, so a user sees what was
// found: "vda (gpt), vda1 (ext4 UUID=... LABEL=root PARTUUID=...)".
// Devices of size zero (unused loop devices, empty drives) are only
// counted, not listed.
func Summary(devs []Device) string {
	var parts []string
	empty := 0
	for _, d := range devs {
		if d.Size == 0 {
			empty++
			continue
		}
		parts = append(parts, d.Name+" ("+describe(d)+")")
	}
	if empty > 0 {
		parts = append(parts, fmt.Sprintf("%d empty", empty))
	}
	if len(parts) == 0 {
		return "no block devices"
	}
	return strings.Join(parts, ", ")
}

func describe(d Device) string {
	var f []string
	switch {
	case d.FSType != "":
		f = append(f, d.FSType)
	case d.PTType != "":
		f = append(f, d.PTType)
	case d.ProbeError != "":
		f = append(f, d.ProbeError)
	default:
		f = append(f, "no filesystem")
	}
	kv := func(k, v string) {
		if v != "" {
			f = append(f, k+"="+quoteIfNeeded(v))
		}
	}
	kv("UUID", d.UUID)
	kv("LABEL", d.Label)
	kv("PARTUUID", d.PartUUID)
	kv("PARTLABEL", d.PartLabel)
	if d.FSType != "" && d.ProbeError != "" {
		f = append(f, d.ProbeError)
	}
	return strings.Join(f, " ")
}

// quoteIfNeeded quotes values that would otherwise be hard to read or to
// copy into a command line: empty, spaces, quotes, control bytes.
func quoteIfNeeded(s string) string {
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\\' || r == ',' || r == '(' || r == ')' || r >= 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
