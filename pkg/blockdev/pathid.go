package blockdev

import (
	"strconv"
	"strings"
)

// sysNode is one device on the way from a block device up to the root of
// /sys/devices: its directory name and the subsystem its "subsystem" link
// names ("" for devices without one, such as pci0000:00).
type sysNode struct {
	Name, Subsystem string
}

// pathStep says what udev's path_id (systemd 256) does with a device of
// one subsystem: the prefix it prepends with the device's name (or, with
// sysnum, with the number its name ends in; "" for no element), and
// whether that subsystem counts as a well-known transport for a block
// device and as a parent with a stable, unique name. Consecutive devices
// of the same subsystem (PCI bridges, nested platform buses) are skipped
// after the nearest one.
type pathStep struct {
	prefix            string
	sysnum            bool
	transport, parent bool
}

var pathSteps = map[string]pathStep{
	"pci":      {prefix: "pci", parent: true},
	"platform": {prefix: "platform", transport: true, parent: true},
	"amba":     {prefix: "amba", transport: true, parent: true},
	"acpi":     {prefix: "acpi", parent: true},
	"xen":      {prefix: "xen", parent: true},
	"virtio":   {transport: true},
	"scm":      {prefix: "scm", transport: true, parent: true},
	"ccw":      {prefix: "ccw", transport: true, parent: true},
	"ccwgroup": {prefix: "ccwgroup", transport: true, parent: true},
	"iucv":     {prefix: "iucv", transport: true, parent: true},
	"spi":      {prefix: "cs", sysnum: true},
	"serio":    {prefix: "serio", sysnum: true},
}

// pathUnsupported are subsystems whose path_id names need more than the
// device's name (SCSI host/channel/target/LUN, ATA port numbers, USB port
// paths and revisions, s390 AP attributes). Rather than produce a name
// udev would not, devices behind them get no by-path name.
var pathUnsupported = map[string]bool{
	"scsi": true, "scsi_tape": true, "cciss": true, "usb": true,
	"bcma": true, "ap": true,
}

// pathID composes udev's ID_PATH for a block device from its parent chain
// (the device itself first) and, for NVMe, its namespace id. It returns ""
// where udev would make no by-path link.
func pathID(chain []sysNode, nsid string) string {
	var elems []string // innermost first
	transport, parent := false, false
	for i := 0; i < len(chain); i++ {
		n := chain[i]
		if pathUnsupported[n.Subsystem] {
			return ""
		}
		var step pathStep
		var elem string
		switch n.Subsystem {
		case "nvme":
			if nsid == "" {
				continue
			}
			step, elem = pathStep{transport: true, parent: true}, "nvme-"+nsid
		default:
			var ok bool
			if step, ok = pathSteps[n.Subsystem]; !ok {
				continue
			}
			switch {
			case step.sysnum:
				num := sysnum(n.Name)
				if num == "" {
					continue // udev does nothing with it, not even skip
				}
				elem = step.prefix + "-" + num
			case step.prefix != "":
				elem = step.prefix + "-" + n.Name
			}
		}
		if elem != "" {
			elems = append(elems, elem)
		}
		transport = transport || step.transport
		parent = parent || step.parent
		for i+1 < len(chain) && chain[i+1].Subsystem == n.Subsystem {
			i++
		}
	}
	if len(elems) == 0 || !parent || !transport {
		return ""
	}
	for i, j := 0, len(elems)-1; i < j; i, j = i+1, j-1 {
		elems[i], elems[j] = elems[j], elems[i]
	}
	return strings.Join(elems, "-")
}

// persistentName reports whether udev's persistent-storage rules handle a
// kernel name at all (not ram*, zram*, md*, dm-*, mmcblk0rpmb, ...).
func persistentName(name string) bool {
	endsInDigit := name != "" && name[len(name)-1] >= '0' && name[len(name)-1] <= '9'
	for _, p := range []string{"mmcblk", "msblk", "mspblk"} {
		if strings.HasPrefix(name, p) {
			return endsInDigit
		}
	}
	for _, p := range []string{"loop", "nvme", "sd", "sr", "vd", "xvd", "bcache", "cciss",
		"dasd", "ubd", "ubi", "scm", "pmem", "nbd", "zd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// sysnum is the run of digits a device name ends in, as udev's sysnum:
// "spi0.1" → "1"; "" if there is none.
func sysnum(name string) string {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	return name[i:]
}

// mmcBootArea returns N for an eMMC boot area "mmcblkXbootN". (No
// regexp: the package is linked into the init, where size counts.)
func mmcBootArea(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "mmcblk")
	if !ok {
		return "", false
	}
	disk, area, ok := strings.Cut(rest, "boot")
	if !ok || !allDigits(disk) || !allDigits(area) {
		return "", false
	}
	return area, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// byPathNames lists the names udev's 60-persistent-storage rules create
// under /dev/disk/by-path for a device, given its disk's ID_PATH: the
// ID_PATH itself with "-partN" for partitions, "-bootN" for eMMC boot
// areas, and the deprecated "virtio-pci-..." form for virtio disks.
func byPathNames(name string, partition int, id string) []string {
	if id == "" || !persistentName(name) {
		return nil
	}
	if area, ok := mmcBootArea(name); ok && partition == 0 {
		return []string{id + "-boot" + area}
	}
	suffix := ""
	if partition > 0 {
		suffix = "-part" + strconv.Itoa(partition)
	}
	names := []string{id + suffix}
	if strings.HasPrefix(name, "vd") && strings.HasPrefix(id, "pci-") {
		names = append(names, "virtio-"+id+suffix)
	}
	return names
}
