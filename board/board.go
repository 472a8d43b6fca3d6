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
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
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
	//
	// Every board lists its architecture's accelerated SHA-256 first
	// (sha256-arm: NEON or ARM assembly; sha256-ssse3: SSSE3, AVX2 or
	// the SHA extensions): Debian's kernels check each module's
	// signature, hashing the whole file, and once it is loaded they hash
	// with it. Measured on the instruction clock (ofsroot bench
	// --icount): the sabrelite's stage 0.401 → 0.379 s, and x86 with a
	// CPU that has SSSE3 (-cpu max) 0.67 → 0.55 s. On a CPU without the
	// instructions the module's load fails with ENODEV, which the init
	// takes as "no such hardware" and goes on.
	Modules []string `json:"modules"`

	QEMU QEMU `json:"qemu"`

	// UBoot describes the board's U-Boot, for boards that boot with it;
	// nil for the others.
	UBoot *UBoot `json:"uboot,omitempty"`
}

// UBoot is a board's U-Boot: the build that fits, the addresses the boot
// script loads the kernel, the initramfs and the device tree to, and
// where the environment lives (what fw_env.config on the device says).
type UBoot struct {
	// Package is the Debian package that ships the build, e.g.
	// "u-boot-imx"; empty when Debian has none (Source says where it
	// comes from then).
	Package string `json:"package,omitempty"`
	// Build is the build's folder under usr/lib/u-boot/ in Package, or
	// its defconfig name when there is no package.
	Build string `json:"build"`
	// Image is the file of the build that goes on the board, e.g.
	// "u-boot-dtb.imx".
	Image string `json:"image,omitempty"`
	// Source says where the build comes from and why it is this one.
	Source string `json:"source,omitempty"`

	// KernelAddr, RamdiskAddr and FDTAddr are where the boot script
	// loads zImage, uInitrd and the device tree.
	KernelAddr  Hex `json:"kernel_addr"`
	RamdiskAddr Hex `json:"ramdisk_addr"`
	FDTAddr     Hex `json:"fdt_addr"`

	// EnvMedium says in words where the environment is, e.g. "SPI NOR".
	EnvMedium string `json:"env_medium"`
	// Env are the environment's copies (one, or two for a redundant
	// environment) as Linux on the board reaches them.
	Env []EnvCopy `json:"env"`

	// QEMU says how QEMU's generic loader starts Image, when it can.
	QEMU *UBootQEMU `json:"qemu,omitempty"`
}

// EnvCopy is one line of fw_env.config.
type EnvCopy struct {
	// Device is the Linux device, e.g. "/dev/mtd0".
	Device string `json:"device"`
	// Offset and Size are CONFIG_ENV_OFFSET and CONFIG_ENV_SIZE.
	Offset Hex `json:"offset"`
	Size   Hex `json:"size"`
	// SectorSize is the flash erase unit (0: the device's own).
	SectorSize Hex `json:"sector_size,omitempty"`
}

// UBootQEMU tells how to start UBoot.Image under QEMU: skip the first
// Skip bytes (the i.MX boot ROM's header area) and load the rest at
// LoadAddr (CONFIG_SYS_TEXT_BASE), where the CPU starts.
type UBootQEMU struct {
	Skip     Hex `json:"skip"`
	LoadAddr Hex `json:"load_addr"`
}

// FwEnvConfig renders the fw_env.config the board's root gets, so that
// fw_printenv, fw_setenv and ofsctl find the environment.
func (u UBoot) FwEnvConfig() string {
	var b strings.Builder
	b.WriteString("# U-Boot environment (" + u.EnvMedium + ")\n")
	b.WriteString("# Device   Offset    Env. size  Sector size\n")
	for _, c := range u.Env {
		fmt.Fprintf(&b, "%s %s %s", c.Device, c.Offset, c.Size)
		if c.SectorSize != 0 {
			fmt.Fprintf(&b, " %s", c.SectorSize)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Hex is a number written in JSON as a hex string, "0x12000000".
type Hex uint64

// String gives the 0x form.
func (h Hex) String() string { return fmt.Sprintf("0x%X", uint64(h)) }

// MarshalJSON writes the 0x form.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

// UnmarshalJSON reads a string in C notation ("0x12000000", "4096") or a
// plain number.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n uint64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a number or a string such as \"0x12000000\", got %s", b)
		}
		*h = Hex(n)
		return nil
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*h = Hex(n)
	return nil
}

func (u *UBoot) check() error {
	switch {
	case u.Build == "":
		return errors.New("uboot.build missing")
	case u.KernelAddr == 0 || u.RamdiskAddr == 0 || u.FDTAddr == 0:
		return errors.New("uboot: kernel_addr, ramdisk_addr and fdt_addr are required")
	case len(u.Env) == 0 || len(u.Env) > 2:
		return fmt.Errorf("uboot.env: %d copies, want 1 (or 2 for a redundant environment)", len(u.Env))
	case len(u.Env) == 2 && u.Env[0].Size != u.Env[1].Size:
		return errors.New("uboot.env: redundant copies must have the same size")
	}
	for _, c := range u.Env {
		if c.Device == "" || c.Size == 0 {
			return errors.New("uboot.env: every copy needs a device and a size")
		}
	}
	return nil
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
	// KernelArgs are kernel command-line words the emulated machine
	// needs (after console=), e.g. no_timer_check on x86 under TCG.
	KernelArgs []string `json:"kernel_args,omitempty"`
	// Unsupported says why QEMU cannot boot this board; empty when it
	// can. The boot tests and the benchmark leave such boards out.
	Unsupported string `json:"unsupported,omitempty"`
}

// Emulated lists the boards QEMU can boot, sorted.
func Emulated() []string {
	var names []string
	for _, n := range Names() {
		if b, err := Lookup(n); err == nil && b.QEMU.Unsupported == "" {
			names = append(names, n)
		}
	}
	return names
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
	if b.UBoot != nil {
		if err := b.UBoot.check(); err != nil {
			return Board{}, fmt.Errorf("board %s: %w", name, err)
		}
	}
	return b, nil
}
