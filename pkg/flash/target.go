// Package flash writes a disk image (.img, or compressed .img.gz,
// .img.xz, .img.zst, recognised by their magic numbers) to a block
// device, or to a file when told so, streaming it without unpacking to
// disk first; then syncs, reads the target back and compares SHA-256
// sums.
//
// Before the first byte is written it refuses: a target that is not a
// block device (unless a file is meant), a partition instead of a whole
// disk, a disk that holds the running system's / or /boot, a disk any of
// whose partitions is mounted, used as swap or held by another device
// (device mapper, RAID), a write-protected disk, a disk smaller than the
// image. The block device is then opened O_EXCL, which the kernel
// refuses (EBUSY) while anything has it mounted: a second check that no
// race with a mount can slip past.
//
// The checks read /proc and /sys through a System value, so tests can
// hand them made-up trees; the parsers take readers.
package flash

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"github.com/ofsroot/ofsroot/pkg/fstab"
	"github.com/ofsroot/ofsroot/pkg/mountfs"

	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrRefused marks every refusal: nothing was written.
var ErrRefused = errors.New("refused")

// Refusal says why a target is not written.
type Refusal struct {
	Target string
	Reason string // what is wrong
	Hint   string // what to do
}

func (r *Refusal) Error() string {
	s := fmt.Sprintf("refusing to write %s: %s", r.Target, r.Reason)
	if r.Hint != "" {
		s += "; " + r.Hint
	}
	return s + " (nothing was written)"
}

// Is makes errors.Is(err, ErrRefused) true.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// ParseSwaps returns the device paths /proc/swaps lists.
func ParseSwaps(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) == 0 {
			continue
		}
		out = append(out, fstab.Unescape(f[0]))
	}
	return out
}

// System is where the checks read the kernel's view: /proc and /sys, or
// made-up trees in tests.
type System struct {
	Proc, Sys string
}

// Host is the running system.
var Host = System{Proc: "/proc", Sys: "/sys"}

// Disk is what the checks learnt of a block device.
type Disk struct {
	Path       string
	Name       string // kernel name, e.g. sdb, loop3, mmcblk0
	Dev        string // major:minor
	SizeBytes  int64
	Model      string
	Partitions []string // kernel names
}

// blockDir is the sysfs folder of device dev (major:minor), resolved.
func (s System) blockDir(dev string) (string, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(s.Sys, "dev/block", dev))
	if err != nil {
		return "", fmt.Errorf("no %s in sysfs: %w", dev, err)
	}
	return p, nil
}

// wholeDisks returns the whole disks under device dev: itself or its
// parent for a partition, and for a device-mapper or RAID device the
// disks under its slaves.
func (s System) wholeDisks(dev string, depth int) []string {
	dir, err := s.blockDir(dev)
	if err != nil || depth > 8 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		dir = filepath.Dir(dir)
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	if len(slaves) == 0 {
		return []string{strings.TrimSpace(readFile(filepath.Join(dir, "dev")))}
	}
	var out []string
	for _, sl := range slaves {
		d := strings.TrimSpace(readFile(filepath.Join(dir, "slaves", sl.Name(), "dev")))
		out = append(out, s.wholeDisks(d, depth+1)...)
	}
	return out
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// SystemMounts are the mount points whose disks are never written: the
// running system's root and boot.
var SystemMounts = []string{"/", "/boot", "/boot/efi", "/boot/firmware"}

// CheckDisk examines the block device at path (major:minor dev) and
// refuses it when it is a partition, holds the running system, is in use
// or is write-protected. It writes nothing.
func (s System) CheckDisk(path, dev string) (*Disk, error) {
	refuse := func(reason, hint string) error { return &Refusal{Target: path, Reason: reason, Hint: hint} }
	dir, err := s.blockDir(dev)
	if err != nil {
		return nil, refuse(fmt.Sprintf("block device %s is not in %s/dev/block", dev, s.Sys), "is it still there?")
	}
	d := &Disk{Path: path, Name: filepath.Base(dir), Dev: dev}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		parent := filepath.Base(filepath.Dir(dir))
		return nil, refuse(fmt.Sprintf("it is partition %s of /dev/%s", s.readAbs(filepath.Join(dir, "partition")), parent),
			"an image holds a partition table of its own: give the whole disk, /dev/"+parent)
	}
	d.Model = strings.TrimSpace(readFile(filepath.Join(dir, "device/model")))
	if n, err := strconv.ParseInt(strings.TrimSpace(readFile(filepath.Join(dir, "size"))), 10, 64); err == nil {
		d.SizeBytes = n * 512
	}
	devs := map[string]string{dev: d.Name} // major:minor -> name
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "partition")); err == nil {
			d.Partitions = append(d.Partitions, e.Name())
			devs[strings.TrimSpace(readFile(filepath.Join(dir, e.Name(), "dev")))] = e.Name()
		}
	}
	sort.Strings(d.Partitions)

	// thread-self: the mount namespace of this thread, which a test
	// (or a tool run under unshare) may have changed.
	f, err := os.Open(filepath.Join(s.Proc, "thread-self/mountinfo"))
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.Open(filepath.Join(s.Proc, "self/mountinfo"))
	}
	if err != nil {
		return nil, refuse("cannot read the mount table: "+err.Error(), "")
	}
	mounts, err := mountfs.ParseMountinfo(f)
	f.Close()
	if err != nil {
		return nil, refuse(err.Error(), "")
	}
	// The running system's disks first: the clearest message.
	for _, sm := range SystemMounts {
		for i := len(mounts) - 1; i >= 0; i-- {
			m := mounts[i]
			if m.Point != sm {
				continue
			}
			for _, w := range s.wholeDisks(m.MajorMinor, 0) {
				if w == dev {
					return nil, refuse(fmt.Sprintf("it holds the running system's %s (%s, %s)", sm, m.Source, m.FSType),
						"writing it would destroy the system you are running; check the device name (lsblk)")
				}
			}
			break // only the top mount at that point matters
		}
	}
	for _, m := range mounts {
		if name, ok := devs[m.MajorMinor]; ok {
			return nil, refuse(fmt.Sprintf("/dev/%s is mounted at %s", name, m.Point),
				"unmount every partition of it first (umount /dev/"+name+")")
		}
	}
	if f, err := os.Open(filepath.Join(s.Proc, "swaps")); err == nil {
		swaps := ParseSwaps(f)
		f.Close()
		for _, sw := range swaps {
			for _, name := range devs {
				if filepath.Base(sw) == name {
					return nil, refuse("/dev/"+name+" is in use as swap", "swapoff /dev/"+name+" first")
				}
			}
		}
	}
	for _, name := range append([]string{""}, d.Partitions...) {
		holders, _ := os.ReadDir(filepath.Join(dir, name, "holders"))
		if len(holders) > 0 {
			who := "/dev/" + d.Name
			if name != "" {
				who = "/dev/" + name
			}
			return nil, refuse(fmt.Sprintf("%s is held by %s (device mapper, LVM or RAID)", who, holders[0].Name()),
				"stop what uses it first (dmsetup ls, lvchange -an, mdadm --stop)")
		}
	}
	if strings.TrimSpace(readFile(filepath.Join(dir, "ro"))) == "1" {
		return nil, refuse("the device is read-only", "an SD card may have its lock switch on")
	}
	return d, nil
}

func (s System) readAbs(p string) string { return strings.TrimSpace(readFile(p)) }

// Target is an opened, checked target.
type Target struct {
	Path    string
	IsBlock bool
	Disk    *Disk // for a block device
}

// CheckTarget refuses what must not be written (see the package
// comment). size is the image's size in bytes; toFile allows a target
// that is not a block device (a regular file, created if missing).
func (s System) CheckTarget(path string, size int64, toFile bool) (*Target, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && toFile {
		return &Target{Path: path}, nil
	}
	if err != nil {
		return nil, &Refusal{Target: path, Reason: err.Error(), Hint: "give the disk's device, e.g. /dev/sdb (lsblk lists them)"}
	}
	var sys unix.Stat_t
	if err := unix.Stat(path, &sys); err != nil {
		return nil, &Refusal{Target: path, Reason: err.Error()}
	}
	if sys.Mode&unix.S_IFMT != unix.S_IFBLK {
		if !toFile {
			what := "a regular file"
			switch m := st.Mode(); {
			case m.IsDir():
				what = "a folder"
			case m&os.ModeCharDevice != 0:
				what = "a character device"
			case m&os.ModeNamedPipe != 0:
				what = "a named pipe"
			case !m.IsRegular():
				what = "a special file"
			}
			return nil, &Refusal{Target: path, Reason: "it is " + what + ", not a block device",
				Hint: "pass --to-file if you mean to write the image into a file"}
		}
		if !st.Mode().IsRegular() {
			return nil, &Refusal{Target: path, Reason: "it is neither a block device nor a regular file"}
		}
		return &Target{Path: path}, nil
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(sys.Rdev), unix.Minor(sys.Rdev))
	d, err := s.CheckDisk(path, dev)
	if err != nil {
		return nil, err
	}
	if size > d.SizeBytes {
		return nil, &Refusal{Target: path, Reason: fmt.Sprintf("the device holds %d bytes (%s), the image is %d bytes (%s)",
			d.SizeBytes, units.Bytes(d.SizeBytes), size, units.Bytes(size)), Hint: "use a larger card or disk"}
	}
	return &Target{Path: path, IsBlock: true, Disk: d}, nil
}
