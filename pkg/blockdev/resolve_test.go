package blockdev

import (
	"errors"
	"strings"
	"testing"
)

// resolveDevs is a machine with an SD card (dos table), a virtio disk
// (gpt), a whole-disk squashfs and an eMMC with a cciss-style name.
var resolveDevs = []Device{
	{Name: "mmcblk3", Major: 179, Minor: 0, Size: 8 << 30, PTType: "dos",
		ByPath: []string{"platform-2198000.usdhc"}},
	{Name: "mmcblk3p1", Major: 179, Minor: 1, Size: 64 << 20, Partition: 1, Disk: "mmcblk3",
		FSType: "vfat", UUID: "1234-ABCD", Label: "BOOT", PartUUID: "1a2b3c4d-01",
		ByPath: []string{"platform-2198000.usdhc-part1"}},
	{Name: "mmcblk3p2", Major: 179, Minor: 2, Size: 4 << 30, Partition: 2, Disk: "mmcblk3",
		FSType: "ext4", UUID: "0d1e2f30-4152-6374-8596-a7b8c9dae0f1", Label: "my root", PartUUID: "1a2b3c4d-02",
		ByPath: []string{"platform-2198000.usdhc-part2"}},
	{Name: "mmcblk3p3", Major: 179, Minor: 3, Size: 4 << 30, Partition: 3, Disk: "mmcblk3",
		FSType: "ext4", UUID: "aaaaaaaa-0000-0000-0000-000000000001", Label: "data", PartUUID: "1a2b3c4d-03",
		ByPath: []string{"platform-2198000.usdhc-part3"}},
	{Name: "vda", Major: 254, Minor: 0, Size: 1 << 30, PTType: "gpt",
		ByPath: []string{"pci-0000:00:04.0", "virtio-pci-0000:00:04.0"}},
	{Name: "vda1", Major: 254, Minor: 1, Size: 1 << 29, Partition: 1, Disk: "vda",
		FSType: "ext4", UUID: "bbbbbbbb-0000-0000-0000-000000000002", Label: "data",
		PartUUID: "11111111-2222-3333-4444-555555555555", PartLabel: "root fs",
		ByPath: []string{"pci-0000:00:04.0-part1", "virtio-pci-0000:00:04.0-part1"}},
	{Name: "vda2", Major: 254, Minor: 2, Size: 1 << 29, Partition: 2, Disk: "vda",
		FSType: "swap", UUID: "cccccccc-0000-0000-0000-000000000003", Label: "a/b",
		PartUUID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", PartLabel: "swap",
		ByPath: []string{"pci-0000:00:04.0-part2", "virtio-pci-0000:00:04.0-part2"}},
	{Name: "vdb", Major: 254, Minor: 16, Size: 1 << 20, FSType: "squashfs",
		ByPath: []string{"platform-a003e00.virtio_mmio"}},
	{Name: "nvme0n1", Major: 259, Minor: 0, Size: 1 << 30},
	{Name: "cciss!c0d0", Major: 104, Minor: 0, Size: 1 << 30},
	{Name: "loop0", Major: 7, Minor: 0},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		spec string
		want string // device name; "" when an error is expected
	}{
		{"/dev/mmcblk3p2", "mmcblk3p2"},
		{"/dev/vda", "vda"},
		{"/dev/cciss/c0d0", "cciss!c0d0"},
		{" /dev/vdb\n", "vdb"},
		{"UUID=0d1e2f30-4152-6374-8596-a7b8c9dae0f1", "mmcblk3p2"},
		{"UUID=0D1E2F30-4152-6374-8596-A7B8C9DAE0F1", "mmcblk3p2"},
		{`UUID="0d1e2f30-4152-6374-8596-a7b8c9dae0f1"`, "mmcblk3p2"},
		{"uuid=1234-abcd", "mmcblk3p1"},
		{"UUID=1234-ABCD", "mmcblk3p1"},
		{"LABEL=BOOT", "mmcblk3p1"},
		{`LABEL="my root"`, "mmcblk3p2"},
		{"LABEL='my root'", "mmcblk3p2"},
		{"LABEL=my root", "mmcblk3p2"},
		{"PARTUUID=1a2b3c4d-02", "mmcblk3p2"},
		{"PARTUUID=1A2B3C4D-02", "mmcblk3p2"},
		{"PARTUUID=11111111-2222-3333-4444-555555555555", "vda1"},
		{"PARTUUID=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE", "vda2"},
		{"PARTUUID=1a2b3c4d-01/PARTNROFF=1", "mmcblk3p2"},
		{"PARTUUID=1a2b3c4d-01/PARTNROFF=2", "mmcblk3p3"},
		{"PARTUUID=1a2b3c4d-03/partnroff=-2", "mmcblk3p1"},
		{"PARTLABEL=root fs", "vda1"},
		{`PARTLABEL="root fs"`, "vda1"},
		{"/dev/disk/by-uuid/0d1e2f30-4152-6374-8596-a7b8c9dae0f1", "mmcblk3p2"},
		{"/dev/disk/by-uuid/1234-ABCD", "mmcblk3p1"},
		{`/dev/disk/by-label/my\x20root`, "mmcblk3p2"},
		{`/dev/disk/by-label/a\x2fb`, "vda2"},
		{"/dev/disk/by-label/BOOT", "mmcblk3p1"},
		{"/dev/disk/by-partuuid/1a2b3c4d-02", "mmcblk3p2"},
		{"/dev/disk/by-partuuid/11111111-2222-3333-4444-555555555555", "vda1"},
		{`/dev/disk/by-partlabel/root\x20fs`, "vda1"},
		{"/dev/disk/by-path/platform-2198000.usdhc-part2", "mmcblk3p2"},
		{"/dev/disk/by-path/platform-2198000.usdhc", "mmcblk3"},
		{"/dev/disk/by-path/pci-0000:00:04.0-part1", "vda1"},
		{"/dev/disk/by-path/virtio-pci-0000:00:04.0-part2", "vda2"},
		{"/dev/disk/by-path/platform-a003e00.virtio_mmio", "vdb"},
		{"179:2", "mmcblk3p2"},
		{"254:16", "vdb"},
		{"b302", "mmcblk3p2"}, // hex 0xb302: major 0xb3=179, minor 2
		{"10300", "nvme0n1"},  // 259:0 in the kernel's split encoding
		{"fe10", "vdb"},       // 254:16
		{"0700", "loop0"},
		{"/dev/vda3", ""},                        // not found
		{"UUID=nope", ""},                        // not found
		{"LABEL=data", ""},                       // two devices
		{"PARTUUID=1a2b3c4d-03/PARTNROFF=1", ""}, // no partition 4
	}
	for _, tt := range tests {
		got, err := Resolve(tt.spec, resolveDevs)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Resolve(%q) = %s, want an error", tt.spec, got.Name)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %s", tt.spec, got.Name, err, tt.want)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		spec     string
		notFound bool     // errors.Is(err, ErrNotFound)
		contains []string // in the message
	}{
		{"/dev/vda3", true, []string{"/dev/vda3"}},
		{"UUID=ffffffff-0000-0000-0000-000000000000", true, nil},
		{"PARTUUID=1a2b3c4d-09", true, nil},
		{"PARTLABEL=nothing", true, nil},
		{"/dev/disk/by-path/pci-0000:00:05.0", true, nil},
		{"8:1", true, nil},
		{"PARTUUID=1a2b3c4d-03/PARTNROFF=1", true, []string{"partition 4"}},
		{"LABEL=data", false, []string{"mmcblk3p3", "vda1", "more than one"}},
		{"UUID=", false, []string{"empty"}},
		{"LABEL=\"\"", false, []string{"empty"}},
		{"PARTUUID=x/PARTNROFF=z", false, []string{"PARTNROFF"}},
		{"vda1", false, []string{"not /dev/NAME"}},
		{"", false, nil},
		{"/dev/", false, []string{"no device name"}},
		{"/dev/disk/by-id/virtio-serial", false, []string{"by-uuid"}},
		{"/dev/disk/by-uuid/", false, nil},
		{"/dev/disk/by-label/a/b", false, nil},
		{"1:x", false, []string{"MAJOR:MINOR"}},
		{"ROOT=/dev/vda", false, nil},
	}
	for _, tt := range tests {
		_, err := Resolve(tt.spec, resolveDevs)
		if err == nil {
			t.Errorf("Resolve(%q) succeeded", tt.spec)
			continue
		}
		if errors.Is(err, ErrNotFound) != tt.notFound {
			t.Errorf("Resolve(%q) = %v; errors.Is(ErrNotFound) = %v, want %v", tt.spec, err, !tt.notFound, tt.notFound)
		}
		for _, c := range tt.contains {
			if !strings.Contains(err.Error(), c) {
				t.Errorf("Resolve(%q) = %q, want it to mention %q", tt.spec, err, c)
			}
		}
	}
}

// TestResolveEmptyFieldsNeverMatch: devices without a UUID or label must
// not match a spec by accident, whatever the spec.
func TestResolveEmptyFieldsNeverMatch(t *testing.T) {
	bare := []Device{{Name: "sda"}, {Name: "sdb"}}
	for _, spec := range []string{`UUID=""`, "LABEL=''", "PARTUUID=\"\"", "/dev/disk/by-path/x"} {
		if d, err := Resolve(spec, bare); err == nil {
			t.Errorf("Resolve(%q) matched %s", spec, d.Name)
		}
	}
}

func TestUnescapeUdev(t *testing.T) {
	tests := map[string]string{
		`plain`:         "plain",
		`my\x20root`:    "my root",
		`a\x2fb`:        "a/b",
		`\x5cx20`:       `\x20`,
		`G\xc3\xbc`:     "Gü",
		`bad\xZZ`:       `bad\xZZ`,
		`short\x2`:      `short\x2`,
		`end\`:          `end\`,
		`\x41\x42\x43`:  "ABC",
		`mixed\x20 \x2`: `mixed  \x2`,
	}
	for in, want := range tests {
		if got := unescapeUdev(in); got != want {
			t.Errorf("unescapeUdev(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	got := Summary(resolveDevs)
	for _, want := range []string{
		"mmcblk3 (dos)",
		"mmcblk3p2 (ext4 UUID=0d1e2f30-4152-6374-8596-a7b8c9dae0f1 LABEL=\"my root\" PARTUUID=1a2b3c4d-02)",
		"vda1 (ext4 UUID=bbbbbbbb-0000-0000-0000-000000000002 LABEL=data PARTUUID=11111111-2222-3333-4444-555555555555 PARTLABEL=\"root fs\")",
		"vdb (squashfs)",
		"nvme0n1 (no filesystem)",
		", 1 empty",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "loop0") {
		t.Errorf("Summary lists an empty device: %s", got)
	}
	if got := Summary(nil); got != "no block devices" {
		t.Errorf("Summary(nil) = %q", got)
	}
	failed := []Device{{Name: "vda", Size: 1, ProbeError: "open /dev/vda: permission denied"}}
	if got := Summary(failed); got != "vda (open /dev/vda: permission denied)" {
		t.Errorf("Summary of unreadable device = %q", got)
	}
}
