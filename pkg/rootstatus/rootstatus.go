// Package rootstatus tells whether the running root is really protected.
// It believes the kernel first: /proc/self/mountinfo says whether / is an
// overlay whose lower layer is the real root at /mnt/root-RO and whether
// that is mounted read-only; the init's status file
// (/run/ofsroot/status.json) adds what was asked for and why anything is
// degraded; statfs of /mnt/root-RW gives the RAM layer's size, use and
// inodes, and for a zram layer its device's mm_stat the compression
// ratio and the RAM used against the cap.
//
// Evaluate is pure (mountinfo text, a status record and a statfs seam in,
// a Report out); Gather reads the live system.
package rootstatus

import (
	"fmt"
	"io"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/units"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// Report is the protection status. Field names are part of ofsctl's
// JSON output: add, never rename.
type Report struct {
	Mode bootstatus.Mode `json:"mode"`
	// Protected is true for protected and sandbox: writes to / go to RAM;
	// also in a degraded boot whose persistent or zram layer gave way to
	// the tmpfs one.
	Protected bool `json:"protected"`
	// RealRoot is the device the system booted from, as mounted now.
	RealRoot *RealRoot `json:"real_root,omitempty"`
	// RAM is the writable layer's use, nil without one.
	RAM *RAMUse `json:"ram,omitempty"`
	// Kernel is what mountinfo says is mounted at /.
	Kernel KernelView `json:"kernel"`
	// StatusFile is where the init's record was read from; StatusMode
	// what it says ("" when it could not be read, see Reasons).
	StatusFile string          `json:"status_file"`
	StatusMode bootstatus.Mode `json:"status_mode,omitempty"`
	Requested  string          `json:"overlay_requested,omitempty"`
	// Booted is the running kernel and the ofsroot init's version, from
	// the status file.
	Booted Booted `json:"booted"`
	// Kernels are the installed kernels and their initramfs images.
	Kernels []KernelInitramfs `json:"kernels,omitempty"`
	// Reasons say why the root is not protected; Warnings anything odd.
	Reasons  []string `json:"reasons,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Mounts are the per-mount policy's results (mounts.go).
	Mounts []Mount `json:"mounts,omitempty"`
}

// Booted is what booted.
type Booted struct {
	Kernel  string `json:"kernel,omitempty"`
	Ofsroot string `json:"ofsroot_version,omitempty"`
}

// RealRoot is the real root's mount.
type RealRoot struct {
	Device        string `json:"device"`
	FSType        string `json:"fstype"`
	Mount         string `json:"mount"`
	ReadOnly      bool   `json:"read_only"`       // the mount (what stops writes)
	SuperReadOnly bool   `json:"super_read_only"` // the filesystem itself
	UUID          string `json:"uuid,omitempty"`
	Label         string `json:"label,omitempty"`
}

// RAMUse is the RAM layer's statfs.
type RAMUse struct {
	Mount        string  `json:"mount"`
	Source       string  `json:"source"`
	SizeBytes    uint64  `json:"size_bytes"`
	UsedBytes    uint64  `json:"used_bytes"`
	AvailBytes   uint64  `json:"avail_bytes"`
	Inodes       uint64  `json:"inodes"`
	InodesUsed   uint64  `json:"inodes_used"`
	UsePercent   float64 `json:"use_percent"`
	InodePercent float64 `json:"inode_percent"`
	// Zram is the device of a zram layer: its compression ratio and the
	// RAM it takes against its cap.
	Zram *zram.Stat `json:"zram,omitempty"`
}

// KernelView is the mountinfo line of /.
type KernelView struct {
	RootFSType       string `json:"root_fstype"`
	RootSource       string `json:"root_source"`
	RootOptions      string `json:"root_options"`
	RootSuperOptions string `json:"root_super_options,omitempty"`
}

// Statfs is the part of statfs(2) used here.
type Statfs struct {
	Bsize                 int64
	Blocks, Bfree, Bavail uint64
	Files, Ffree          uint64
}

// Inputs is what Evaluate works from.
type Inputs struct {
	Mountinfo io.Reader
	// Status is the init's record; StatusErr why it is missing.
	Status     *bootstatus.Status
	StatusErr  error
	StatusFile string
	// Statfs reads a mounted filesystem's use; nil leaves RAM out.
	Statfs func(path string) (Statfs, error)
	// Zram reads the zram device behind a mount source (nil, nil when
	// the source is none: ZramOf); nil leaves it out.
	Zram func(source string) (*zram.Stat, error)
	// Kernels are the installed kernels (InstalledKernels); each one
	// whose initramfs is not ofsroot's is warned about.
	Kernels []KernelInitramfs
}

// Exit codes of ofsctl status, for scripts.
const (
	ExitProtected = 0
	ExitPlain     = 3
	ExitDegraded  = 4
)

// ExitCode is the status's exit code: 0 when writes to / go to RAM
// (protected, sandbox), 3 plain, 4 degraded.
func (r *Report) ExitCode() int {
	switch r.Mode {
	case bootstatus.Protected, bootstatus.Sandbox:
		return ExitProtected
	case bootstatus.Plain:
		return ExitPlain
	}
	return ExitDegraded
}

// Evaluate decides the mode from the kernel's mounts and the status file.
func Evaluate(in Inputs) (*Report, error) {
	mounts, err := mountfs.ParseMountinfo(in.Mountinfo)
	if err != nil {
		return nil, err
	}
	r := &Report{StatusFile: in.StatusFile}
	st := in.Status
	if st != nil {
		r.StatusMode, r.Requested = st.Mode, st.Requested
		r.Booted = Booted{Kernel: st.Kernel, Ofsroot: st.OfsrootVersion}
	}
	r.Kernels = in.Kernels
	for _, k := range in.Kernels {
		if k.Problem != "" {
			r.Warnings = append(r.Warnings, fmt.Sprintf("kernel %s: %s: %s; booting it would not protect the root: rebuild it (/usr/lib/ofsroot/update-initramfs %s, or ofsroot initramfs --kernel-version %s)",
				k.Kernel, k.Initramfs, k.Problem, k.Kernel, k.Kernel))
		}
	}
	root, ok := mountfs.MountAt(mounts, "/")
	if !ok {
		return nil, fmt.Errorf("mountinfo has no mount at /: is /proc mounted for this mount namespace?")
	}
	r.Kernel = KernelView{RootFSType: root.FSType, RootSource: root.Source, RootOptions: root.Options, RootSuperOptions: root.SuperOptions}

	lowerPath := bootstatus.ReadOnlyLayer
	if root.FSType == "overlay" {
		lowers, _ := root.Option("lowerdir")
		ours := false
		for _, l := range strings.Split(lowers, ":") {
			ours = ours || l == lowerPath
		}
		lower, haveLower := mountfs.MountAt(mounts, lowerPath)
		switch {
		case st != nil && st.Mode == bootstatus.Sandbox:
			r.Mode = bootstatus.Sandbox
		case !ours:
			r.Mode = bootstatus.Degraded
			r.Reasons = append(r.Reasons, fmt.Sprintf("/ is an overlay, but its lower layer is %q, not the real root at %s: not an ofsroot root", lowers, lowerPath))
		case !haveLower:
			r.Mode = bootstatus.Degraded
			r.Reasons = append(r.Reasons, fmt.Sprintf("/ is an overlay of %s, but nothing is mounted at %s in this mount namespace: cannot tell whether the real root is read-only", lowerPath, lowerPath))
		case !lower.ReadOnly():
			r.Mode = bootstatus.Degraded
			r.Reasons = append(r.Reasons, fmt.Sprintf("the real root at %s is mounted read-write: writes there reach the device; run `mount -o remount,ro %s`", lowerPath, lowerPath))
		case upperFellBack(st):
			// Protected, but by a RAM layer standing in for the
			// persistent one asked for: changes are not kept.
			r.Mode, r.Protected = bootstatus.Degraded, true
			r.Reasons = append(r.Reasons, st.Reasons...)
		default:
			r.Mode = bootstatus.Protected
		}
		if haveLower {
			r.RealRoot = realRoot(lower, st)
			if lower.ReadOnly() && !lower.SuperReadOnly() {
				r.Warnings = append(r.Warnings, fmt.Sprintf("the real root's filesystem is read-write underneath (a maintenance session or commit is running, or one was killed): this mount stays read-only; `mount -o remount,ro %s` when none runs", lowerPath))
			}
		}
		if st != nil && st.Mode != bootstatus.Protected && st.Mode != bootstatus.Sandbox && !upperFellBack(st) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the status file says %s, but / is an overlay", st.Mode))
		}
		if upper, ok := root.Option("upperdir"); ok && in.Statfs != nil {
			if rw, ok := mountOf(mounts, upper); ok {
				r.RAM = ramUse(rw, in.Statfs, &r.Warnings)
				if r.RAM != nil && in.Zram != nil {
					z, err := in.Zram(rw.Source)
					if err != nil {
						r.Warnings = append(r.Warnings, fmt.Sprintf("zram layer %s: %v", rw.Source, err))
					}
					r.RAM.Zram = z
				}
			}
		}
	} else {
		r.RealRoot = realRoot(root, st)
		switch {
		case st == nil:
			r.Mode = bootstatus.Plain
			r.Reasons = append(r.Reasons, fmt.Sprintf("no status file (%v): not booted by the ofsroot init?", in.StatusErr))
		case st.Mode == bootstatus.Plain:
			r.Mode = bootstatus.Plain
			r.Reasons = append(r.Reasons, fmt.Sprintf("the overlay was not asked for (overlayfs=%s); boot with overlayfs=yes to protect the root", orNo(st.Requested)))
		case st.Mode == bootstatus.Degraded:
			r.Mode = bootstatus.Degraded
			r.Reasons = append(r.Reasons, st.Reasons...)
		default:
			r.Mode = bootstatus.Degraded
			r.Reasons = append(r.Reasons, fmt.Sprintf("the status file says %s, but the kernel has %s from %s at /, not an overlay", st.Mode, root.FSType, root.Source))
		}
		if r.Mode == bootstatus.Degraded && !root.ReadOnly() {
			r.Reasons = append(r.Reasons, fmt.Sprintf("/ (%s) is mounted read-write: writes reach the device", root.Source))
		}
	}
	r.Protected = r.Protected || r.Mode == bootstatus.Protected || r.Mode == bootstatus.Sandbox
	evaluateMounts(r, st, mounts) // mounts.go
	return r, nil
}

// upperFellBack says the init's record is of a protected root whose
// persistent or zram layer gave way to RAM (bootstatus.Upper.Fallback).
func upperFellBack(st *bootstatus.Status) bool {
	return st != nil && st.Mode == bootstatus.Degraded && st.Upper != nil && st.Upper.Fallback != ""
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func orNo(s string) string {
	if s == "" {
		return "no"
	}
	return s
}

// mountOf finds the top mount holding path (the longest mount point that
// is path or a parent of it), other than / (the overlay itself).
func mountOf(mounts []mountfs.MountInfo, path string) (mountfs.MountInfo, bool) {
	best, found := mountfs.MountInfo{}, false
	for _, m := range mounts {
		if m.Point != "/" && (path == m.Point || strings.HasPrefix(path, m.Point+"/")) {
			if !found || len(m.Point) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

func realRoot(m mountfs.MountInfo, st *bootstatus.Status) *RealRoot {
	rr := &RealRoot{Device: m.Source, FSType: m.FSType, Mount: m.Point, ReadOnly: m.ReadOnly(), SuperReadOnly: m.SuperReadOnly()}
	if st != nil {
		rr.UUID, rr.Label = st.Root.UUID, st.Root.Label
		if (rr.Device == "/dev/root" || rr.Device == "") && st.Root.Device != "" {
			rr.Device = st.Root.Device
		}
	}
	return rr
}

func ramUse(m mountfs.MountInfo, statfs func(string) (Statfs, error), warns *[]string) *RAMUse {
	s, err := statfs(m.Point)
	if err != nil {
		*warns = append(*warns, fmt.Sprintf("statfs %s: %v", m.Point, err))
		return nil
	}
	u := &RAMUse{
		Mount: m.Point, Source: m.Source,
		SizeBytes:  s.Blocks * uint64(s.Bsize),
		UsedBytes:  (s.Blocks - s.Bfree) * uint64(s.Bsize),
		AvailBytes: s.Bavail * uint64(s.Bsize),
		Inodes:     s.Files,
		InodesUsed: s.Files - s.Ffree,
	}
	if u.SizeBytes > 0 {
		u.UsePercent = percent(u.UsedBytes, u.SizeBytes)
	}
	if u.Inodes > 0 {
		u.InodePercent = percent(u.InodesUsed, u.Inodes)
	}
	return u
}

func percent(a, b uint64) float64 { return float64(int(float64(a)*1000/float64(b)+0.5)) / 10 }

// Text writes the report for people.
func (r *Report) Text(w io.Writer) {
	fmt.Fprintf(w, "mode:       %s\n", r.Mode)
	if rr := r.RealRoot; rr != nil {
		ro := "read-write"
		if rr.ReadOnly {
			ro = "read-only"
		}
		fmt.Fprintf(w, "real root:  %s (%s) at %s, %s\n", rr.Device, rr.FSType, rr.Mount, ro)
	}
	if u := r.RAM; u != nil {
		fmt.Fprintf(w, "RAM layer:  %s at %s: %s of %s used (%.1f%%), %d of %d inodes (%.1f%%)\n",
			u.Source, u.Mount, units.Bytes(u.UsedBytes), units.Bytes(u.SizeBytes), u.UsePercent, u.InodesUsed, u.Inodes, u.InodePercent)
		if z := u.Zram; z != nil {
			limit := "no cap"
			if z.MemLimitBytes > 0 {
				limit = fmt.Sprintf("%.1f%% of its cap of %s", z.MemPercent, units.Bytes(z.MemLimitBytes))
			}
			fmt.Fprintf(w, "zram:       %s, compression ratio %.2f (%s of data in %s); RAM used %s, %s\n",
				z.Algorithm, z.Ratio, units.Bytes(z.DataBytes), units.Bytes(z.ComprBytes), units.Bytes(z.MemUsedBytes), limit)
		}
	}
	opts := r.Kernel.RootOptions
	if r.Kernel.RootSuperOptions != "" {
		opts += " " + r.Kernel.RootSuperOptions
	}
	fmt.Fprintf(w, "kernel:     / is %s from %s (%s)\n", r.Kernel.RootFSType, r.Kernel.RootSource, opts)
	sm := string(r.StatusMode)
	if sm == "" {
		sm = "unreadable"
	}
	fmt.Fprintf(w, "status:     %s says %s\n", r.StatusFile, sm)
	if b := r.Booted; b.Kernel != "" || b.Ofsroot != "" {
		fmt.Fprintf(w, "booted:     kernel %s, ofsroot init %s\n", orUnknown(b.Kernel), orUnknown(b.Ofsroot))
	}
	for _, k := range r.Kernels {
		if k.Problem == "" {
			fmt.Fprintf(w, "installed:  kernel %s, %s by ofsroot %s%s\n", k.Kernel, k.Initramfs, k.OfsrootVersion, k.carries())
		}
	}
	r.mountsText(w) // mounts.go
	for _, s := range r.Reasons {
		fmt.Fprintf(w, "reason:     %s\n", s)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning:    %s\n", s)
	}
}
