package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Scan lists the block devices in sysDir/class/block (sysDir is normally
// "/sys", devDir normally "/dev"), sorted disk by disk with each disk's
// partitions after it in partition order.
//
// From sysfs it reads each device's dev, size and partition attributes and
// follows its link into /sys/devices to compose udev's by-path names. It
// opens devDir/NAME read-only (no writes, no ioctls) to probe the
// filesystem, and reads each disk's partition table to give its partitions
// their PARTUUID and PARTLABEL. Devices of size zero are not opened. A
// device that cannot be opened or probed is still listed, with empty probe
// fields and ProbeError saying why. Scan fails only when the block class
// folder cannot be listed.
func Scan(sysDir, devDir string) ([]Device, error) {
	return scan(sysDir, devDir, nil)
}

// ScanFor is Scan narrowed to the devices spec (a root= value, see
// Resolve) can name, when the spec names one device by itself: for
// /dev/NAME or MAJ:MIN only that device and, for a partition, its disk
// (whose table gives the partition its PARTUUID) are opened and probed.
// Probing every device costs: on an i.MX6 board it reads the SPI NOR
// flash as well as the SD card. Every other spec (UUID=, LABEL=, ...)
// must see every device, if only to refuse a value two devices share, so
// ScanFor is Scan for them. Resolve(spec, devs) gives the same answer on
// either list.
func ScanFor(sysDir, devDir, spec string) ([]Device, error) {
	m, err := parseSpec(spec)
	if err != nil || (m.kind != byName && m.kind != byDevnum) {
		return Scan(sysDir, devDir)
	}
	return scan(sysDir, devDir, m.match)
}

// scan is Scan of the devices wanted accepts (judged on the fields read
// from sysfs: name, numbers, partition) and the disks of the partitions
// among them; all when wanted is nil.
func scan(sysDir, devDir string, wanted func(Device) bool) ([]Device, error) {
	classDir := filepath.Join(sysDir, "class", "block")
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	sysRoot := sysDir
	if r, err := filepath.EvalSymlinks(sysDir); err == nil {
		sysRoot = r
	}

	devs := make([]Device, 0, len(ents))
	sysPath := map[string]string{} // kernel name → folder under /sys/devices
	for _, e := range ents {
		name := e.Name()
		dir := filepath.Join(classDir, name)
		d := Device{
			Name: name,
			// devtmpfs turns '!' in a kernel name into a sub-folder.
			Path: filepath.Join(devDir, strings.ReplaceAll(name, "!", "/")),
		}
		if mj, mn, ok := strings.Cut(readAttr(dir, "dev"), ":"); ok {
			a, _ := strconv.ParseUint(mj, 10, 32)
			b, _ := strconv.ParseUint(mn, 10, 32)
			d.Major, d.Minor = uint32(a), uint32(b)
		}
		if n, err := strconv.ParseUint(readAttr(dir, "size"), 10, 64); err == nil && n < 1<<54 {
			d.Size = n * 512 // sysfs counts 512-byte sectors whatever the device's sector size
		}
		if n, err := strconv.Atoi(readAttr(dir, "partition")); err == nil && n > 0 {
			d.Partition = n
		}
		if p, err := filepath.EvalSymlinks(dir); err == nil {
			sysPath[name] = p
		}
		if d.Partition > 0 {
			if p, ok := sysPath[name]; ok {
				// A partition's folder sits inside its disk's.
				d.Disk = filepath.Base(filepath.Dir(p))
			} else {
				d.Disk = guessDisk(name)
			}
		}
		devs = append(devs, d)
	}
	if wanted != nil {
		devs = narrow(devs, wanted)
	}

	tables := map[string]diskTable{}
	for i := range devs {
		d := &devs[i]
		if d.Partition == 0 {
			tables[d.Name] = probeDevice(d, lbSize(classDir, d.Name))
		} else {
			probeDevice(d, 0)
		}
	}
	for i := range devs {
		d := &devs[i]
		if d.Partition == 0 {
			continue
		}
		t, ok := tables[d.Disk]
		if !ok {
			t.err = "disk " + d.Disk + " not found"
		}
		if t.err != "" && d.ProbeError == "" {
			d.ProbeError = "partition table: " + t.err
		}
		for _, p := range t.parts {
			if p.Number == d.Partition {
				d.PartUUID, d.PartLabel = p.UUID, p.Label
				break
			}
		}
	}

	ids := map[string]string{} // disk name → ID_PATH
	for i := range devs {
		d := &devs[i]
		disk := d.Name
		if d.Partition > 0 {
			disk = d.Disk
		}
		id, ok := ids[disk]
		if !ok {
			id = diskPathID(sysRoot, sysPath[disk], readAttr(filepath.Join(classDir, disk), "nsid"))
			ids[disk] = id
		}
		d.ByPath = byPathNames(d.Name, d.Partition, id)
	}

	sort.SliceStable(devs, func(i, j int) bool {
		a, b := devs[i], devs[j]
		ka, kb := a.Name, b.Name
		if a.Partition > 0 {
			ka = a.Disk
		}
		if b.Partition > 0 {
			kb = b.Disk
		}
		if ka != kb {
			return ka < kb
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Name < b.Name
	})
	return devs, nil
}

// narrow keeps the devices wanted accepts and the disks of the
// partitions among them.
func narrow(devs []Device, wanted func(Device) bool) []Device {
	disks := map[string]bool{}
	for _, d := range devs {
		if wanted(d) && d.Partition > 0 {
			disks[d.Disk] = true
		}
	}
	var kept []Device
	for _, d := range devs {
		if wanted(d) || (d.Partition == 0 && disks[d.Name]) {
			kept = append(kept, d)
		}
	}
	return kept
}

// diskTable is a whole disk's partition table, or why it could not be read.
type diskTable struct {
	parts []Partition
	err   string
}

// probeDevice opens d.Path and fills d's filesystem fields and, for a
// whole disk (sectorSize > 0), PTType; it returns the disk's partitions.
func probeDevice(d *Device, sectorSize int64) diskTable {
	if d.Size == 0 {
		return diskTable{}
	}
	// O_NONBLOCK: an optical drive without a disc must not wait for one.
	f, err := os.OpenFile(d.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		d.ProbeError = err.Error()
		return diskTable{err: err.Error()}
	}
	defer f.Close()
	var errs []string
	d.FSType, d.UUID, d.Label, err = ProbeFS(f)
	if err != nil {
		errs = append(errs, err.Error())
	}
	var t diskTable
	if sectorSize > 0 {
		scheme, parts, err := partitions(f, int64(d.Size), sectorSize)
		d.PTType, t.parts = scheme, parts
		if err != nil {
			t.err = err.Error()
			errs = append(errs, t.err)
		}
	}
	d.ProbeError = strings.Join(errs, "; ")
	return t
}

// diskPathID composes udev's ID_PATH for the disk whose folder under
// /sys/devices is dir, walking up to the root of the device tree. Disks
// under /sys/devices/virtual (loop, zram, dm) get none, as in udev, except
// NVMe namespaces under a multipath nvme-subsystem, which udev names by
// their controller's place.
func diskPathID(sysRoot, dir, nsid string) string {
	devices := filepath.Join(sysRoot, "devices")
	virtual := filepath.Join(devices, "virtual") + "/"
	if dir == "" || !strings.HasPrefix(dir, devices+"/") {
		return ""
	}
	var chain []sysNode
	if strings.HasPrefix(dir, virtual) {
		if !strings.HasPrefix(dir, virtual+"nvme-subsystem/") || nsid == "" {
			return ""
		}
		name := filepath.Base(dir)
		ctrl, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "class", "nvme", nvmeController(name)))
		if err != nil || strings.HasPrefix(ctrl, virtual) {
			return "" // a fabrics disk, or no controller: no stable place
		}
		chain = append(chain, sysNode{Name: name, Subsystem: "block"})
		dir = ctrl
	}
	return pathID(append(chain, sysChain(devices, dir)...), nsid)
}

// sysChain lists the devices from dir up to the root of the device tree.
func sysChain(devices, dir string) []sysNode {
	var chain []sysNode
	for d := dir; strings.HasPrefix(d, devices+"/") && len(chain) < 64; d = filepath.Dir(d) {
		// Folders without a uevent file or a subsystem link are glue
		// ("block", "mmc_host"), not devices; udev's parent walk skips
		// them too.
		sub := ""
		if l, err := os.Readlink(filepath.Join(d, "subsystem")); err == nil {
			sub = filepath.Base(l)
		} else if _, err := os.Lstat(filepath.Join(d, "uevent")); err != nil {
			continue
		}
		chain = append(chain, sysNode{Name: filepath.Base(d), Subsystem: sub})
	}
	return chain
}

// nvmeController is the controller a namespace's name starts with:
// "nvme0n1" → "nvme0".
func nvmeController(name string) string {
	i := len("nvme")
	for i < len(name) && name[i] >= '0' && name[i] <= '9' {
		i++
	}
	return name[:i]
}

// readAttr reads one sysfs attribute, trimmed; "" if it is not there.
func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// lbSize is a disk's logical block size, which partition tables count in.
func lbSize(classDir, name string) int64 {
	n, err := strconv.ParseInt(readAttr(filepath.Join(classDir, name), "queue/logical_block_size"), 10, 64)
	if err != nil || n < 512 || n > 65536 || n&(n-1) != 0 {
		return 512
	}
	return n
}

// guessDisk names a partition's disk from its name alone ("mmcblk0p1" →
// "mmcblk0", "sda1" → "sda"), for a sysfs without the usual links.
func guessDisk(name string) string {
	s := strings.TrimRight(name, "0123456789")
	if len(s) > 1 && s[len(s)-1] == 'p' && s[len(s)-2] >= '0' && s[len(s)-2] <= '9' {
		s = s[:len(s)-1]
	}
	return s
}
