// Package bootstatus is the machine-readable record the init leaves for
// tools on the booted system: what mode the root is in, which devices and
// sizes were used, how long each boot step took, and why anything is
// degraded.
//
// The init writes it to Path (on /run, which it moves into the new root);
// ofsctl and the tests read it back with Read.
package bootstatus

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ofsroot/ofsroot/internal/smalljson"
	"github.com/ofsroot/ofsroot/pkg/atomicfile"
)

// maxRecord bounds what Read reads: a record is a few KiB.
const maxRecord = 16 << 20

// Path is where the init writes the status on the booted system.
const Path = "/run/ofsroot/status.json"

// The layout a protected root leaves behind, as the seed's script does:
// where the layers are mounted and the names their mounts carry.
const (
	ReadOnlyLayer = "/mnt/root-RO"   // the real root, read-only
	WritableLayer = "/mnt/root-RW"   // the RAM layer: upper/ and work/
	TmpfsName     = "tmpfs-root"     // the RAM layer's mount source
	OverlayName   = "overlayfs-root" // the overlay's mount source
)

// Mode says how the root was set up.
type Mode string

const (
	// Protected: the overlay is the root; the real root is read-only.
	Protected Mode = "protected"
	// Plain: the overlay was not asked for; the real root as ro/rw say.
	Plain Mode = "plain"
	// Degraded: the overlay was asked for but could not be built, so the
	// real root was booted read-only (fail closed). Reasons says why.
	Degraded Mode = "degraded"
	// Sandbox: the root's init runs in namespaces under a supervisor.
	Sandbox Mode = "sandbox"
)

// Status is the whole record. Field names are part of the on-device
// interface: add fields, never rename them.
type Status struct {
	Version int  `json:"version"`
	Mode    Mode `json:"mode"`
	// OfsrootVersion is the init's version (package version); Kernel
	// the running kernel's release (uname -r).
	OfsrootVersion string `json:"ofsroot_version,omitempty"`
	Kernel         string `json:"kernel,omitempty"`
	// Requested is what the command line asked for ("yes", "no", ...).
	Requested string `json:"overlay_requested"`

	Root    Root     `json:"root"`
	RAM     *RAM     `json:"ram,omitempty"`
	Overlay *Overlay `json:"overlay,omitempty"`
	// Upper is the writable layer's kind and home (ofs-upper=); absent
	// in the records of inits older than it, which read as a RAM layer.
	Upper *Upper `json:"upper,omitempty"`

	// Init is the program the init handed over to, with its arguments.
	Init     string   `json:"init"`
	InitArgs []string `json:"init_args,omitempty"`

	Steps    []Step   `json:"steps"`
	Reasons  []string `json:"degraded_reasons,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Modules lists the modules loaded and those skipped, with why.
	Modules []Module `json:"modules,omitempty"`

	// StartedAt and HandoverAt are CLOCK_MONOTONIC seconds (the kernel's
	// printk clock) at the init's first instruction and just before exec
	// of the real init.
	StartedAt  float64 `json:"started_at"`
	HandoverAt float64 `json:"handover_at"`
	Cmdline    string  `json:"cmdline"`

	// Alias is the overlayroot= or systemd.volatile= word the protection
	// was taken from and what it became; absent without one.
	Alias *Alias `json:"alias,omitempty"`
	// Mounts is the per-mount policy's result for each mount of fstab
	// other than "/" and swap (ofs-mounts=, MOUNTS= in ofsroot.conf);
	// absent when the root is not protected.
	Mounts []Mount `json:"mounts,omitempty"`
}

// Alias is a migration word (overlayroot=, systemd.volatile=).
type Alias struct {
	Word string `json:"word"` // as written, key=value
	Mode string `json:"mode"` // what it became, in ofsroot's words
	// Overridden: overlayfs= was given too and decided.
	Overridden bool `json:"overridden,omitempty"`
}

// Mount policies, as Mount.Policy spells them.
const (
	MountKeep    = "keep"
	MountProtect = "protect"
	MountRO      = "ro"
)

// Mount is one fstab mount and what the boot made of it.
type Mount struct {
	Mount  string `json:"mount"`  // the mount point
	Spec   string `json:"spec"`   // fstab's device field
	Policy string `json:"policy"` // what was asked: MountKeep, MountProtect, MountRO
	// From says who asked: "ofs-mounts=", "ofsroot.conf", the alias word,
	// or "default".
	From string `json:"from"`
	// Result is what was done: "kept", "read-only", "protected", or
	// "read-only (protect failed)" when the overlay could not be built
	// and the fstab line was made read-only instead.
	Result string `json:"result"`
	// Device, Lower and Upper: for a protected mount, the device
	// (write-protected), where it is mounted read-only, and the
	// overlay's upper folder in RAM.
	Device string `json:"device,omitempty"`
	Lower  string `json:"lower,omitempty"`
	Upper  string `json:"upper,omitempty"`
	// Note says why the result differs from the policy, or what was
	// noticed (noauto, a virtual filesystem).
	Note string `json:"note,omitempty"`
}

// Root describes the real root device.
type Root struct {
	Spec    string `json:"spec"`            // what root= said
	Device  string `json:"device"`          // what it resolved to, /dev/NAME
	FSType  string `json:"fstype"`          // filesystem type used
	Options string `json:"options"`         // mount options used
	Mount   string `json:"mount"`           // where it is mounted after the switch
	UUID    string `json:"uuid,omitempty"`  // filesystem UUID, if known
	Label   string `json:"label,omitempty"` // filesystem label, if known
}

// RAM describes the tmpfs that holds the writable layer.
type RAM struct {
	Mount     string `json:"mount"`      // /mnt/root-RW
	SizeBytes uint64 `json:"size_bytes"` // the tmpfs size= given
	Percent   int    `json:"percent,omitempty"`
	MemTotal  uint64 `json:"mem_total_bytes"`
}

// Upper kinds, as Upper.Kind spells them.
const (
	UpperRAM    = "ram"    // a tmpfs (RAM describes it)
	UpperZram   = "zram"   // a compressed RAM disk
	UpperDevice = "device" // a filesystem on a partition, kept across boots
)

// Upper describes where the writable layer lives. Kind-specific fields
// follow the common ones.
type Upper struct {
	Kind   string `json:"kind"`             // UpperRAM, UpperZram, UpperDevice
	Asked  string `json:"asked,omitempty"`  // ofs-upper= as written
	Device string `json:"device,omitempty"` // /dev/zram0, /dev/vdb1
	FSType string `json:"fstype,omitempty"` // the layer's filesystem
	Dir    string `json:"dir,omitempty"`    // folder on it holding upper/ and work/

	// A persistent layer's (UpperDevice) record of this boot.
	// State is UpperNew, UpperReused, UpperSetAside or UpperReset.
	State string `json:"state,omitempty"`
	// SetAside is the folder (on the device) the previous layer was
	// renamed to when it was made on another lower; never deleted.
	SetAside string `json:"set_aside,omitempty"`
	// Lower is the lower the layer is bound to (its DIR/lower.json):
	// the root's filesystem UUID and content marker.
	Lower string `json:"lower,omitempty"`
	// Fallback says why the asked-for layer (a persistent or a zram
	// one) could not be used: Kind is then UpperRAM, the root still
	// protected by the tmpfs layer, and the boot's mode is Degraded with
	// the same reason.
	Fallback string `json:"fallback,omitempty"`
	// Zram is a zram layer's setup (Kind "zram").
	Zram *Zram `json:"zram,omitempty"`
}

// Zram is how the init set up a zram layer's device.
type Zram struct {
	Algorithm string `json:"algorithm"` // the compressor in use
	// Offered are the compressors the kernel's zram listed.
	Offered       []string `json:"offered,omitempty"`
	DisksizeBytes uint64   `json:"disksize_bytes"`  // the disk's (uncompressed) size
	MemLimitBytes uint64   `json:"mem_limit_bytes"` // the RAM it may take; 0: no cap
	// Mkfs is the mke2fs the filesystem was made with.
	Mkfs string `json:"mkfs,omitempty"`
}

// States of a persistent layer (Upper.State).
const (
	UpperNew      = "new"       // none was there: a fresh one
	UpperReused   = "reused"    // made on this lower at an earlier boot
	UpperSetAside = "set-aside" // one made on another lower set aside, a fresh one started
	UpperReset    = "reset"     // emptied at this boot (ofs-reset=1)
)

// Overlay describes the overlay mounted as the new /.
type Overlay struct {
	Lower string `json:"lower"`
	Upper string `json:"upper"`
	Work  string `json:"work"`
}

// Step is one boot step as the executor ran it.
type Step struct {
	Name     string  `json:"name"`
	Seconds  float64 `json:"seconds"`
	Optional bool    `json:"optional,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// Module is one kernel module the init tried to load.
type Module struct {
	Name    string  `json:"name"`
	Result  string  `json:"result"` // "loaded", "present", "skipped: ...", "failed: ..."
	Seconds float64 `json:"seconds"`
}

// Write encodes s to w: the bytes of encoding/json's indented encoding,
// made by package smalljson (the init cannot afford encoding/json).
func Write(w io.Writer, s *Status) error {
	data, err := smalljson.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// Read decodes a status record.
func Read(r io.Reader) (*Status, error) {
	var s Status
	data, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err == nil && len(data) > maxRecord {
		err = fmt.Errorf("more than %d bytes", maxRecord)
	}
	if err == nil {
		err = smalljson.DecodeFirst(data, &s)
	}
	if err != nil {
		return nil, fmt.Errorf("reading boot status: %w", err)
	}
	return &s, nil
}

// WriteFile writes s to path atomically (atomicfile.Write), making its
// folder.
func WriteFile(path string, s *Status) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return Write(w, s) })
}

// ReadFile reads the status at path.
func ReadFile(path string) (*Status, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}
