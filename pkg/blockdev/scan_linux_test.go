package blockdev

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fakeSys builds a sysfs tree in a test folder: device folders under
// devices/ with "subsystem" links and uevent files, block devices with
// dev/size/partition attributes, and class/block links to them, laid out
// as the kernel does.
type fakeSys struct {
	t    *testing.T
	root string
}

func newFakeSys(t *testing.T) *fakeSys {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sys")
	for _, d := range []string{"devices", "class/block", "bus", "class/nvme"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeSys{t, root}
}

func (s *fakeSys) write(path, content string) {
	s.t.Helper()
	p := filepath.Join(s.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// link makes a relative symlink at path (under the root) to target (also
// under the root), as sysfs links are.
func (s *fakeSys) link(path, target string) {
	s.t.Helper()
	p := filepath.Join(s.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Dir(p), filepath.Join(s.root, target))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.Symlink(rel, p); err != nil {
		s.t.Fatal(err)
	}
}

// device makes a device folder under devices/ with its subsystem ("" for
// a device without one, like pci0000:00 or /sys/devices/platform).
func (s *fakeSys) device(path, subsystem string) {
	s.t.Helper()
	s.write(filepath.Join("devices", path, "uevent"), "")
	if subsystem == "" {
		return
	}
	target := filepath.Join("bus", subsystem)
	if subsystem == "block" || subsystem == "mmc_host" || subsystem == "nvme" || subsystem == "nvme-subsystem" {
		target = filepath.Join("class", subsystem)
	}
	if err := os.MkdirAll(filepath.Join(s.root, target), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.link(filepath.Join("devices", path, "subsystem"), target)
}

// block makes a block device at devices/path with its attributes and its
// class/block link.
func (s *fakeSys) block(path, devnum string, bytes int64, partition int) {
	s.t.Helper()
	s.device(path, "block")
	dir := filepath.Join("devices", path)
	s.write(filepath.Join(dir, "dev"), devnum+"\n")
	s.write(filepath.Join(dir, "size"), strconv.FormatInt(bytes/512, 10)+"\n")
	if partition > 0 {
		s.write(filepath.Join(dir, "partition"), strconv.Itoa(partition)+"\n")
	} else {
		s.write(filepath.Join(dir, "queue/logical_block_size"), "512\n")
	}
	s.link(filepath.Join("class/block", filepath.Base(path)), dir)
}

// image writes data into a file at off, growing it as needed.
func writeAt(t *testing.T, path string, data []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeMachine builds the sysfs trees of the boards ofsroot boots and a dev
// folder whose "device nodes" are image files with real filesystems:
//
//   - an x86 virtio-blk disk on PCI, GPT, with ext4 and vfat partitions;
//   - an i.MX SD card (platform bus), MBR, vfat and ext4, plus an eMMC
//     boot area;
//   - an ARM virtio-mmio disk holding a squashfs without a table;
//   - a disk with 4 KiB logical blocks and a GPT in those units;
//   - an NVMe namespace under a multipath nvme-subsystem;
//   - an idle loop device, and one whose node is missing.
func fakeMachine(t *testing.T) (sysDir, devDir string, want []Device) {
	t.Helper()
	s := newFakeSys(t)
	devDir = filepath.Join(t.TempDir(), "dev")
	if err := os.Mkdir(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	node := func(name string) string { return filepath.Join(devDir, name) }

	// Filesystems, each made as its own partition image.
	const (
		x86UUID = "11111111-0000-4000-8000-000000000001"
		armUUID = "22222222-0000-4000-8000-000000000002"
	)
	sparseFile(t, devDir, "vda1", 4<<20)
	run(t, "", "mkfs.ext4", "-q", "-F", "-L", "root", "-U", x86UUID, node("vda1"))
	sparseFile(t, devDir, "vda2", 2<<20)
	run(t, "", "mkfs.vfat", "-n", "EFI", "-i", "0000E5F1", node("vda2"))
	sparseFile(t, devDir, "mmcblk3p1", 2<<20)
	run(t, "", "mkfs.vfat", "-n", "BOOT", "-i", "2198ABCD", node("mmcblk3p1"))
	sparseFile(t, devDir, "mmcblk3p2", 4<<20)
	run(t, "", "mkfs.ext4", "-q", "-F", "-L", "armroot", "-U", armUUID, node("mmcblk3p2"))
	sq := t.TempDir()
	run(t, "", "mksquashfs", sq, node("vdb"), "-noappend", "-quiet", "-no-progress")
	vdbSize := int64(len(readFile(t, node("vdb"))))
	vdbSize = (vdbSize + 511) / 512 * 512

	// x86: GPT disk with the partitions copied in where the table says.
	sparseFile(t, devDir, "vda", 16<<20)
	run(t, `label: gpt
label-id: 01234567-89AB-CDEF-0123-456789ABCDEF
start=2048, size=8192, type=L, uuid=3f1a0c2e-1111-4a4a-9b9b-000000000001, name="rootfs"
start=10240, size=4096, type=U, uuid=3f1a0c2e-2222-4a4a-9b9b-000000000002, name="EFI System"
`, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", node("vda"))
	writeAt(t, node("vda"), readFile(t, node("vda1")), 2048*512)
	writeAt(t, node("vda"), readFile(t, node("vda2")), 10240*512)
	s.device("pci0000:00", "")
	s.device("pci0000:00/0000:00:04.0", "pci")
	s.device("pci0000:00/0000:00:04.0/virtio1", "virtio")
	s.block("pci0000:00/0000:00:04.0/virtio1/block/vda", "254:0", 16<<20, 0)
	s.block("pci0000:00/0000:00:04.0/virtio1/block/vda/vda1", "254:1", 4<<20, 1)
	s.block("pci0000:00/0000:00:04.0/virtio1/block/vda/vda2", "254:2", 2<<20, 2)

	// i.MX6: SD card on the platform bus, MBR.
	sparseFile(t, devDir, "mmcblk3", 16<<20)
	run(t, `label: dos
label-id: 0x5eed0001
start=2048, size=4096, type=c
start=6144, size=8192, type=83
`, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", node("mmcblk3"))
	writeAt(t, node("mmcblk3"), readFile(t, node("mmcblk3p1")), 2048*512)
	writeAt(t, node("mmcblk3"), readFile(t, node("mmcblk3p2")), 6144*512)
	sparseFile(t, devDir, "mmcblk3boot0", 1<<20)
	const mmc = "platform/soc/2100000.bus/219c000.mmc"
	s.device("platform", "")
	s.device("platform/soc", "platform")
	s.device("platform/soc/2100000.bus", "platform")
	s.device(mmc, "platform")
	s.device(mmc+"/mmc_host/mmc3", "mmc_host")
	s.device(mmc+"/mmc_host/mmc3/mmc3:aaaa", "mmc")
	s.block(mmc+"/mmc_host/mmc3/mmc3:aaaa/block/mmcblk3", "179:0", 16<<20, 0)
	s.block(mmc+"/mmc_host/mmc3/mmc3:aaaa/block/mmcblk3/mmcblk3p1", "179:1", 2<<20, 1)
	s.block(mmc+"/mmc_host/mmc3/mmc3:aaaa/block/mmcblk3/mmcblk3p2", "179:2", 4<<20, 2)
	s.block(mmc+"/mmc_host/mmc3/mmc3:aaaa/block/mmcblk3boot0", "179:8", 1<<20, 0)

	// ARM virt: virtio-mmio disk, squashfs, no table.
	s.device("platform/a003e00.virtio_mmio", "platform")
	s.device("platform/a003e00.virtio_mmio/virtio0", "virtio")
	s.block("platform/a003e00.virtio_mmio/virtio0/block/vdb", "254:16", vdbSize, 0)

	// A disk with 4 KiB logical blocks: its GPT counts in them.
	const u4k = "44444444-0000-4000-8000-000000000004"
	if err := os.WriteFile(node("vdc"), buildGPT(make([]byte, 1<<20), 4096, 128, 128,
		gptPart{0, "0fc63daf-8483-4772-8e79-3d69d8477de4", u4k, "data4k", 16, 200}), 0o644); err != nil {
		t.Fatal(err)
	}
	s.device("pci0000:00/0000:00:05.0", "pci")
	s.device("pci0000:00/0000:00:05.0/virtio2", "virtio")
	s.block("pci0000:00/0000:00:05.0/virtio2/block/vdc", "254:32", 1<<20, 0)
	s.write("devices/pci0000:00/0000:00:05.0/virtio2/block/vdc/queue/logical_block_size", "4096\n")
	s.block("pci0000:00/0000:00:05.0/virtio2/block/vdc/vdc1", "254:33", 185*4096, 1)

	// NVMe with native multipath: the namespace lives in the virtual
	// tree, its controller on PCI. Size zero: not opened.
	s.device("pci0000:00/0000:00:1d.0", "pci")
	s.device("pci0000:00/0000:00:1d.0/0000:3d:00.0", "pci")
	s.device("pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0", "nvme")
	s.link("class/nvme/nvme0", "devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0")
	s.device("virtual/nvme-subsystem/nvme-subsys0", "nvme-subsystem")
	s.block("virtual/nvme-subsystem/nvme-subsys0/nvme0n1", "259:0", 0, 0)
	s.write("devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1/nsid", "1\n")

	// Loop devices: idle, and one whose node is missing.
	s.block("virtual/block/loop0", "7:0", 0, 0)
	s.block("virtual/block/loop1", "7:1", 1<<20, 0)

	want = []Device{
		{Name: "loop0", Path: node("loop0"), Major: 7, Minor: 0},
		{Name: "loop1", Path: node("loop1"), Major: 7, Minor: 1, Size: 1 << 20,
			ProbeError: "open " + node("loop1") + ": no such file or directory"},
		{Name: "mmcblk3", Path: node("mmcblk3"), Major: 179, Minor: 0, Size: 16 << 20, PTType: "dos",
			ByPath: []string{"platform-219c000.mmc"}},
		{Name: "mmcblk3p1", Path: node("mmcblk3p1"), Major: 179, Minor: 1, Size: 2 << 20, Partition: 1, Disk: "mmcblk3",
			FSType: "vfat", UUID: "2198-ABCD", Label: "BOOT", PartUUID: "5eed0001-01",
			ByPath: []string{"platform-219c000.mmc-part1"}},
		{Name: "mmcblk3p2", Path: node("mmcblk3p2"), Major: 179, Minor: 2, Size: 4 << 20, Partition: 2, Disk: "mmcblk3",
			FSType: "ext4", UUID: armUUID, Label: "armroot", PartUUID: "5eed0001-02",
			ByPath: []string{"platform-219c000.mmc-part2"}},
		{Name: "mmcblk3boot0", Path: node("mmcblk3boot0"), Major: 179, Minor: 8, Size: 1 << 20,
			ByPath: []string{"platform-219c000.mmc-boot0"}},
		{Name: "nvme0n1", Path: node("nvme0n1"), Major: 259, Minor: 0,
			ByPath: []string{"pci-0000:3d:00.0-nvme-1"}},
		{Name: "vda", Path: node("vda"), Major: 254, Minor: 0, Size: 16 << 20, PTType: "gpt",
			ByPath: []string{"pci-0000:00:04.0", "virtio-pci-0000:00:04.0"}},
		{Name: "vda1", Path: node("vda1"), Major: 254, Minor: 1, Size: 4 << 20, Partition: 1, Disk: "vda",
			FSType: "ext4", UUID: x86UUID, Label: "root",
			PartUUID: "3f1a0c2e-1111-4a4a-9b9b-000000000001", PartLabel: "rootfs",
			ByPath: []string{"pci-0000:00:04.0-part1", "virtio-pci-0000:00:04.0-part1"}},
		{Name: "vda2", Path: node("vda2"), Major: 254, Minor: 2, Size: 2 << 20, Partition: 2, Disk: "vda",
			FSType: "vfat", UUID: "0000-E5F1", Label: "EFI",
			PartUUID: "3f1a0c2e-2222-4a4a-9b9b-000000000002", PartLabel: "EFI System",
			ByPath: []string{"pci-0000:00:04.0-part2", "virtio-pci-0000:00:04.0-part2"}},
		{Name: "vdb", Path: node("vdb"), Major: 254, Minor: 16, Size: uint64(vdbSize), FSType: "squashfs",
			ByPath: []string{"platform-a003e00.virtio_mmio"}},
		{Name: "vdc", Path: node("vdc"), Major: 254, Minor: 32, Size: 1 << 20, PTType: "gpt",
			ByPath: []string{"pci-0000:00:05.0", "virtio-pci-0000:00:05.0"}},
		{Name: "vdc1", Path: node("vdc1"), Major: 254, Minor: 33, Size: 185 * 4096, Partition: 1, Disk: "vdc",
			PartUUID: u4k, PartLabel: "data4k",
			ProbeError: "open " + node("vdc1") + ": no such file or directory",
			ByPath:     []string{"pci-0000:00:05.0-part1", "virtio-pci-0000:00:05.0-part1"}},
	}
	return s.root, devDir, want
}

func TestScanFakeMachine(t *testing.T) {
	sysDir, devDir, want := fakeMachine(t)
	got, err := Scan(sysDir, devDir)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("Scan found %d devices, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("device %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// The specs a user would write for these boards find the right
	// partitions in what Scan returned.
	for spec, name := range map[string]string{
		"/dev/disk/by-path/platform-219c000.mmc-part2":           "mmcblk3p2",
		"/dev/disk/by-path/platform-219c000.mmc-part1":           "mmcblk3p1",
		"/dev/disk/by-path/pci-0000:00:04.0-part1":               "vda1",
		"/dev/disk/by-path/virtio-pci-0000:00:04.0-part1":        "vda1",
		"/dev/disk/by-path/platform-a003e00.virtio_mmio":         "vdb",
		"/dev/disk/by-path/pci-0000:3d:00.0-nvme-1":              "nvme0n1",
		"PARTUUID=5eed0001-02":                                   "mmcblk3p2",
		"PARTUUID=3F1A0C2E-1111-4A4A-9B9B-000000000001":          "vda1",
		"PARTLABEL=EFI System":                                   "vda2",
		"PARTLABEL=data4k":                                       "vdc1",
		"LABEL=armroot":                                          "mmcblk3p2",
		"UUID=2198-ABCD":                                         "mmcblk3p1",
		"/dev/disk/by-uuid/11111111-0000-4000-8000-000000000001": "vda1",
		"/dev/mmcblk3p2":                                         "mmcblk3p2",
		"179:2":                                                  "mmcblk3p2",
	} {
		d, err := Resolve(spec, got)
		if err != nil || d.Name != name {
			t.Errorf("Resolve(%q) = %s, %v; want %s", spec, d.Name, err, name)
		}
	}
	_, err = Resolve("/dev/disk/by-path/platform-2198000.usdhc-part1", got)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of an absent by-path: %v, want ErrNotFound", err)
	}
	if s := Summary(got); !strings.Contains(s, "mmcblk3p2 (ext4 UUID="+"22222222-0000-4000-8000-000000000002 LABEL=armroot PARTUUID=5eed0001-02)") ||
		!strings.Contains(s, "loop1 (open ") {
		t.Errorf("Summary = %s", s)
	}
}

// TestScanUnreadableDisk: when a disk cannot be read, its
// partitions are still listed and say why their PARTUUID is missing.
func TestScanUnreadableDisk(t *testing.T) {
	s := newFakeSys(t)
	devDir := t.TempDir()
	s.device("platform", "")
	s.device("platform/soc", "platform")
	s.device("platform/soc/2198000.usdhc", "platform")
	s.device("platform/soc/2198000.usdhc/mmc_host/mmc0", "mmc_host")
	s.device("platform/soc/2198000.usdhc/mmc_host/mmc0/mmc0:0001", "mmc")
	base := "platform/soc/2198000.usdhc/mmc_host/mmc0/mmc0:0001/block/mmcblk0"
	s.block(base, "179:0", 1<<20, 0)
	s.block(base+"/mmcblk0p1", "179:1", 4096, 1)
	if err := os.WriteFile(filepath.Join(devDir, "mmcblk0p1"), buildExt(0, 0, 0, "12345678-1234-1234-1234-123456789abc", "r"), 0o644); err != nil {
		t.Fatal(err)
	}
	devs, err := Scan(s.root, devDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("Scan = %+v", devs)
	}
	p := devs[1]
	if p.Name != "mmcblk0p1" || p.FSType != "ext2" || p.PartUUID != "" ||
		!strings.Contains(p.ProbeError, "partition table: open") ||
		!reflect.DeepEqual(p.ByPath, []string{"platform-2198000.usdhc-part1"}) {
		t.Errorf("partition of an unreadable disk: %+v", p)
	}
	// The seed device's fstab line.
	if d, err := Resolve("/dev/disk/by-path/platform-2198000.usdhc-part1", devs); err != nil || d.Name != "mmcblk0p1" {
		t.Errorf("Resolve = %s, %v", d.Name, err)
	}
}

// TestScanDiskFromSysfsLayout: a partition's disk is the folder it sits
// in, whatever the names suggest.
func TestScanDiskFromSysfsLayout(t *testing.T) {
	s := newFakeSys(t)
	s.device("platform", "")
	s.device("platform/1000.ctl", "platform")
	s.block("platform/1000.ctl/block/disk7", "8:0", 1<<20, 0)
	s.block("platform/1000.ctl/block/disk7/part3", "8:3", 4096, 3)
	devs, err := Scan(s.root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[1].Name != "part3" || devs[1].Disk != "disk7" ||
		!reflect.DeepEqual(devs[1].ByPath, []string(nil)) {
		t.Errorf("Scan = %+v", devs)
	}
}

func TestScanMissingSysfs(t *testing.T) {
	if _, err := Scan(filepath.Join(t.TempDir(), "nosys"), "/dev"); err == nil {
		t.Error("Scan of a missing sysfs succeeded")
	}
}

func TestGuessDisk(t *testing.T) {
	for in, want := range map[string]string{
		"sda1": "sda", "vda12": "vda", "mmcblk0p1": "mmcblk0", "nvme0n1p3": "nvme0n1",
		"loop0p1": "loop0", "md126p1": "md126",
	} {
		if got := guessDisk(in); got != want {
			t.Errorf("guessDisk(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestScanRealSys runs Scan on this machine's own /sys and /dev.
func TestScanRealSys(t *testing.T) {
	ents, err := os.ReadDir("/sys/class/block")
	if err != nil || len(ents) == 0 {
		testenv.SkipUnlessCI(t, "no block devices in /sys/class/block (%v): not a usual Linux machine", err)
	}
	devs, err := Scan("/sys", "/dev")
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if len(devs) == 0 {
		t.Fatal("Scan found no devices although /sys/class/block lists some")
	}
	for _, d := range devs {
		if d.Name == "" || d.Path != filepath.Join("/dev", strings.ReplaceAll(d.Name, "!", "/")) {
			t.Errorf("bad device %+v", d)
		}
		if (d.Partition > 0) != (d.Disk != "") {
			t.Errorf("partition fields disagree: %+v", d)
		}
	}
	t.Logf("found: %s", Summary(devs))
}

// TestScanLoopDevice attaches a partitioned image to a real loop device
// and checks Scan against blkid on the partition node the kernel made.
// It needs root and a kernel with loop partition support.
func TestScanLoopDevice(t *testing.T) {
	testenv.NeedRoot(t, "attaches a loop device")
	needTool(t, "losetup")
	dir := t.TempDir()
	img := sparseFile(t, dir, "disk.img", 16<<20)
	run(t, strings.ReplaceAll(gptScript, "IMG", img), "sfdisk", "-q", "--no-reread", "--no-tell-kernel", img)
	part := sparseFile(t, dir, "p2.img", 4<<20)
	run(t, "", "mkfs.ext4", "-q", "-F", "-L", "looproot", "-U", "5a5a5a5a-0000-4000-8000-00000000005a", part)
	writeAt(t, img, readFile(t, part), 6144*512)

	loop := testenv.Loop(t, img, "--partscan", "--read-only")
	name := filepath.Base(loop)
	p2 := name + "p2"
	if _, err := os.Stat("/dev/" + p2); err != nil {
		// Some kernels do not scan loop devices themselves; partx adds
		// the partitions through BLKPG, and devtmpfs makes the nodes.
		if out, err := exec.Command("partx", "--add", loop).CombinedOutput(); err != nil {
			testenv.SkipUnlessCI(t, "the kernel made no partitions for %s and partx could not add them: %v: %s", loop, err, out)
		}
		if _, err := os.Stat("/dev/" + p2); err != nil {
			testenv.SkipUnlessCI(t, "no partition node for %s: %v", loop, err)
		}
	}

	devs, err := Scan("/sys", "/dev")
	if err != nil {
		t.Fatal(err)
	}
	var got *Device
	for i := range devs {
		if devs[i].Name == p2 {
			got = &devs[i]
		}
	}
	if got == nil {
		t.Fatalf("Scan did not list %s: %s", p2, Summary(devs))
	}
	want := Device{
		Name: p2, Path: "/dev/" + p2, Partition: 2, Disk: name, Size: 8192 * 512,
		Major: got.Major, Minor: got.Minor,
		FSType: "ext4", UUID: "5a5a5a5a-0000-4000-8000-00000000005a", Label: "looproot",
		PartUUID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", PartLabel: "root fs",
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Scan:\n got %+v\nwant %+v", *got, want)
	}
	if b := blkid(t, "/dev/"+p2); b != nil {
		fromBlkid := []string{b["TYPE"], b["UUID"], b["LABEL"], b["PART_ENTRY_UUID"], b["PART_ENTRY_NAME"]}
		mine := []string{got.FSType, got.UUID, got.Label, got.PartUUID, got.PartLabel}
		if !reflect.DeepEqual(mine, fromBlkid) {
			t.Errorf("Scan says %q, blkid %q", mine, fromBlkid)
		}
	}
	if d, err := Resolve("PARTUUID=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", devs); err != nil || d.Name != p2 {
		t.Errorf("Resolve(PARTUUID=...) = %s, %v", d.Name, err)
	}
}

// TestScanForNarrows: for a spec naming one device, ScanFor lists (so
// opens) only it and its disk; for every spec it resolves to the same
// device, with the same fields, as a full Scan.
func TestScanForNarrows(t *testing.T) {
	sysDir, devDir, _ := fakeMachine(t)
	all, err := Scan(sysDir, devDir)
	if err != nil {
		t.Fatal(err)
	}
	for spec, wantLen := range map[string]int{
		"/dev/mmcblk3p2":                     2, // and its disk, for the PARTUUID
		"/dev/vda":                           1,
		"179:2":                              2,
		"fe00":                               1, // 254:0, vda
		"/dev/sdz":                           0,
		"PARTUUID=5eed0001-02":               len(all),
		"LABEL=armroot":                      len(all),
		"UUID=2198-ABCD":                     len(all),
		"/dev/disk/by-path/pci-0000:00:04.0": len(all),
	} {
		devs, err := ScanFor(sysDir, devDir, spec)
		if err != nil {
			t.Fatalf("ScanFor(%q): %v", spec, err)
		}
		if len(devs) != wantLen {
			t.Errorf("ScanFor(%q) listed %d devices, want %d: %s", spec, len(devs), wantLen, Summary(devs))
		}
		want, werr := Resolve(spec, all)
		got, gerr := Resolve(spec, devs)
		if !reflect.DeepEqual(got, want) || (werr == nil) != (gerr == nil) {
			t.Errorf("Resolve(%q) on ScanFor = %+v, %v; on Scan = %+v, %v", spec, got, gerr, want, werr)
		}
	}
}
