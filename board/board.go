// Package board holds one definition per supported board: the CPU
// architecture the init is compiled for, the Debian kernel flavour, the
// console, the device tree, the kernel modules the initramfs carries, and
// how QEMU emulates the board for tests.
//
// The definitions are the JSON files beside this file, embedded at build
// time, so a newcomer adds a board by adding one file.
package board

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.json
var definitions embed.FS

// Board describes one target.
type Board struct {
	// Name is the file name without .json, e.g. "qemu-x86_64".
	Name        string `json:"name"`
	Description string `json:"description"`

	// GOARCH and GOARM select the Go toolchain target for the init.
	GOARCH string `json:"goarch"`
	GOARM  string `json:"goarm,omitempty"`
	// DebianArch is the Debian architecture name (amd64, armhf, arm64).
	DebianArch string `json:"debian_arch"`
	// KernelFlavour is the Debian kernel flavour (amd64, armmp, arm64).
	KernelFlavour string `json:"kernel_flavour"`
	// Console is the kernel console= value, e.g. "ttymxc1,115200".
	Console string `json:"console"`
	// DeviceTree is the .dtb file name under usr/lib/linux-image-VERSION/
	// of the kernel package, empty for boards without a device tree.
	DeviceTree string `json:"device_tree,omitempty"`
	// Modules are the kernel modules the initramfs carries, by module
	// name. The builder adds their dependencies and the soft
	// dependencies that matter, and orders them for loading.
	Modules []string `json:"modules"`

	QEMU QEMU `json:"qemu"`
}

// QEMU tells how to boot the board under QEMU's TCG emulation.
type QEMU struct {
	Binary  string `json:"binary"`
	Machine string `json:"machine,omitempty"`
	// MemoryMiB is passed as -m.
	MemoryMiB int `json:"memory_mib"`
	SMP       int `json:"smp"`
	// Disk is how the root disk is attached: "virtio-pci",
	// "virtio-mmio" or "sd-card".
	Disk string `json:"disk"`
	// DiskDevice is the kernel name of the whole root disk as the guest
	// sees it, e.g. "/dev/vda" or "/dev/mmcblk3".
	DiskDevice string `json:"disk_device"`
	// DiskSizePowerOfTwo: the emulated card needs a power-of-two size.
	DiskSizePowerOfTwo bool `json:"disk_size_power_of_two,omitempty"`
	// SerialArgs are the arguments that put the console on stdio.
	SerialArgs []string `json:"serial_args"`
	// ExtraArgs are added as they are.
	ExtraArgs []string `json:"extra_args,omitempty"`
}

// PartitionDevice names partition n of the QEMU root disk the way the
// kernel does: vda1, but mmcblk3p1.
func (q QEMU) PartitionDevice(n int) string {
	d := q.DiskDevice
	if d != "" && d[len(d)-1] >= '0' && d[len(d)-1] <= '9' {
		return fmt.Sprintf("%sp%d", d, n)
	}
	return fmt.Sprintf("%s%d", d, n)
}

// Lookup returns the board called name.
func Lookup(name string) (Board, error) {
	data, err := definitions.ReadFile(name + ".json")
	if err != nil {
		return Board{}, fmt.Errorf("no board %q (known boards: %s)", name, strings.Join(Names(), ", "))
	}
	return parse(name, data)
}

// Names lists the known boards, sorted.
func Names() []string {
	entries, _ := fs.Glob(definitions, "*.json")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e, ".json"))
	}
	sort.Strings(names)
	return names
}

// All returns every board definition.
func All() ([]Board, error) {
	var all []Board
	for _, n := range Names() {
		b, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		all = append(all, b)
	}
	return all, nil
}

func parse(name string, data []byte) (Board, error) {
	var b Board
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Board{}, fmt.Errorf("board %s: %w", name, err)
	}
	if b.Name != name {
		return Board{}, fmt.Errorf("board %s: file says name %q", name, b.Name)
	}
	switch {
	case b.GOARCH == "":
		return Board{}, fmt.Errorf("board %s: goarch missing", name)
	case b.DebianArch == "" || b.KernelFlavour == "":
		return Board{}, fmt.Errorf("board %s: debian_arch and kernel_flavour are required", name)
	case b.Console == "":
		return Board{}, fmt.Errorf("board %s: console missing", name)
	case len(b.Modules) == 0:
		return Board{}, fmt.Errorf("board %s: no modules listed", name)
	}
	return b, nil
}
