// Package bootstatus is the machine-readable record the init leaves for
// tools on the booted system: what mode the root is in, which devices and
// sizes were used, how long each boot step took, and why anything is
// degraded.
//
// The init writes it to Path (on /run, which it moves into the new root);
// ofsctl and the tests read it back with Read.
package bootstatus

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ofsroot/ofsroot/pkg/atomicfile"
)

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

// Write encodes s to w.
func Write(w io.Writer, s *Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Read decodes a status record.
func Read(r io.Reader) (*Status, error) {
	var s Status
	if err := json.NewDecoder(r).Decode(&s); err != nil {
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
