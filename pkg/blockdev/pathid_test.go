package blockdev

import (
	"reflect"
	"strings"
	"testing"
)

// chain builds a parent chain from "name|subsystem" words, device first.
func chain(words string) []sysNode {
	var c []sysNode
	for _, w := range strings.Fields(words) {
		n, s, _ := strings.Cut(w, "|")
		c = append(c, sysNode{Name: n, Subsystem: s})
	}
	return c
}

// TestPathID follows the sysfs paths of the boards ofsroot boots, as
// udev's path_id names them. Names containing ':' are written with '='.
func TestPathID(t *testing.T) {
	tests := []struct {
		name  string
		chain string
		nsid  string
		want  string
	}{
		{"x86 virtio-blk on PCI", // /sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda
			"vda|block virtio1|virtio 0000:00:04.0|pci pci0000:00|", "", "pci-0000:00:04.0"},
		{"virtio-blk behind a PCI bridge names the nearest PCI device",
			"vda|block virtio3|virtio 0000:01:00.0|pci 0000:00:1c.0|pci pci0000:00|", "", "pci-0000:01:00.0"},
		{"arm virtio-mmio", // /sys/devices/platform/a003e00.virtio_mmio/virtio0/block/vda
			"vda|block virtio0|virtio a003e00.virtio_mmio|platform platform|", "", "platform-a003e00.virtio_mmio"},
		{"i.MX6 SD card", // .../soc/2100000.bus/219c000.mmc/mmc_host/mmc3/mmc3:aaaa/block/mmcblk3
			"mmcblk3|block mmc3:aaaa|mmc mmc3|mmc_host 219c000.mmc|platform 2100000.bus|platform soc|platform platform|",
			"", "platform-219c000.mmc"},
		{"older kernel's usdhc name",
			"mmcblk0|block mmc0:0001|mmc mmc0|mmc_host 2198000.usdhc|platform 2100000.aips-bus|platform soc|platform platform|",
			"", "platform-2198000.usdhc"},
		{"SD host on PCI (sdhci-pci)",
			"mmcblk0|block mmc0:0001|mmc mmc0|mmc_host 0000:00:1e.6|pci pci0000:00|", "", ""},
		{"nvme",
			"nvme0n1|block nvme0|nvme 0000:3d:00.0|pci 0000:00:1d.0|pci pci0000:00|", "1", "pci-0000:3d:00.0-nvme-1"},
		{"nvme without nsid is no transport",
			"nvme0n1|block nvme0|nvme 0000:3d:00.0|pci pci0000:00|", "", ""},
		{"acpi parent with virtio transport",
			"vda|block virtio0|virtio LNRO0005:00|acpi", "", "acpi-LNRO0005:00"},
		{"SATA is not guessed",
			"sda|block 0:0:0:0|scsi target0:0:0|scsi host0|scsi ata1| 0000:00:1f.2|pci pci0000:00|", "", ""},
		{"USB stick on an ARM board is not guessed as the platform controller",
			"sda|block 0:0:0:0|scsi host0|scsi 1-1:1.0|usb 1-1|usb usb1|usb 2184200.usb|platform soc|platform", "", ""},
		{"virtual device has no parent", "loop0|block", "", ""},
		{"platform device without transport subsystem is still a transport",
			"foo|block 1000.ctl|platform", "", "platform-1000.ctl"},
		{"pci alone is no transport for a block device",
			"xyz|block 0000:00:07.0|pci", "", ""},
		{"xen parent with virtio", "xvda|block v|virtio vbd-51712|xen", "", "xen-vbd-51712"},
		{"ccw", "dasda|block 0.0.0150|ccw css0|", "", "ccw-0.0.0150"},
		{"SD card over SPI", "mmcblk0|block mmc0:0000|mmc mmc0|mmc_host spi0.1|spi spi0|spi_master 2008000.spi|platform soc|platform",
			"", "platform-2008000.spi-cs-1"},
		{"amba controller", "mmcblk0|block mmc0:aaaa|mmc mmc0|mmc_host 1c0f000.mmc|amba", "", "amba-1c0f000.mmc"},
		{"empty chain", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pathID(chain(tt.chain), tt.nsid); got != tt.want {
				t.Errorf("pathID = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPathSteps pins every row of the subsystem table.
func TestPathSteps(t *testing.T) {
	for sub, step := range pathSteps {
		outer := "platform"
		if sub == outer {
			outer = "amba" // a platform parent would be skipped
		}
		got := pathID([]sysNode{{"d", "block"}, {"x7", sub}, {"p", outer}}, "")
		want := outer + "-p"
		switch {
		case step.sysnum:
			want += "-" + step.prefix + "-7"
		case step.prefix != "":
			want += "-" + step.prefix + "-x7"
		}
		if got != want {
			t.Errorf("%s under an %s device: %q, want %q", sub, outer, got, want)
		}
		// Alone, the subsystem must provide both a transport and a
		// parent to give a name.
		got = pathID([]sysNode{{"d", "block"}, {"x7", sub}}, "")
		if (got != "") != (step.transport && step.parent && step.prefix != "") {
			t.Errorf("%s alone: %q with %+v", sub, got, step)
		}
	}
	for sub := range pathUnsupported {
		if got := pathID([]sysNode{{"d", "block"}, {"x", sub}, {"p", "platform"}}, ""); got != "" {
			t.Errorf("%s: %q, want no name", sub, got)
		}
	}
}

func TestSysnum(t *testing.T) {
	for in, want := range map[string]string{"spi0.1": "1", "serio12": "12", "abc": "", "": "", "7": "7"} {
		if got := sysnum(in); got != want {
			t.Errorf("sysnum(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestByPathNames(t *testing.T) {
	tests := []struct {
		name      string
		partition int
		id        string
		want      []string
	}{
		{"vda", 0, "pci-0000:00:04.0", []string{"pci-0000:00:04.0", "virtio-pci-0000:00:04.0"}},
		{"vda1", 1, "pci-0000:00:04.0", []string{"pci-0000:00:04.0-part1", "virtio-pci-0000:00:04.0-part1"}},
		{"vda", 0, "platform-a003e00.virtio_mmio", []string{"platform-a003e00.virtio_mmio"}},
		{"vda2", 2, "platform-a003e00.virtio_mmio", []string{"platform-a003e00.virtio_mmio-part2"}},
		{"mmcblk3p2", 2, "platform-219c000.mmc", []string{"platform-219c000.mmc-part2"}},
		{"mmcblk3", 0, "platform-219c000.mmc", []string{"platform-219c000.mmc"}},
		{"mmcblk3boot1", 0, "platform-219c000.mmc", []string{"platform-219c000.mmc-boot1"}},
		{"mmcblk3rpmb", 0, "platform-219c000.mmc", nil},
		{"nvme0n1p3", 3, "pci-0000:3d:00.0-nvme-1", []string{"pci-0000:3d:00.0-nvme-1-part3"}},
		{"zram0", 0, "platform-x", nil},
		{"vda", 0, "", nil},
	}
	for _, tt := range tests {
		if got := byPathNames(tt.name, tt.partition, tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("byPathNames(%s, %d, %s) = %q, want %q", tt.name, tt.partition, tt.id, got, tt.want)
		}
	}
}

func TestPersistentName(t *testing.T) {
	yes := []string{"sda", "sda1", "vda", "vdb3", "mmcblk0", "mmcblk0p1", "mmcblk0boot0", "nvme0n1p1",
		"loop0", "sr0", "xvda", "nbd0", "pmem0", "dasda", "ubiblock0_0", "cciss!c0d0"}
	no := []string{"ram0", "zram0", "dm-0", "md0", "mmcblk0rpmb", "fd0", "hda", ""}
	for _, n := range yes {
		if !persistentName(n) {
			t.Errorf("persistentName(%q) = false", n)
		}
	}
	for _, n := range no {
		if persistentName(n) {
			t.Errorf("persistentName(%q) = true", n)
		}
	}
}
