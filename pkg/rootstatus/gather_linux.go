package rootstatus

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// Sources are the live files Gather reads; tests point them elsewhere.
type Sources struct {
	Mountinfo  string // /proc/self/mountinfo
	StatusFile string // bootstatus.Path
	Boot       string // /boot, where the installed kernels are ("": not looked at)
}

// Live are the running system's sources.
var Live = Sources{Mountinfo: "/proc/self/mountinfo", StatusFile: bootstatus.Path, Boot: "/boot"}

// Gather reads the sources and evaluates them.
func Gather(s Sources) (*Report, error) {
	mi, err := os.ReadFile(s.Mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading the kernel's mount table: %w (is /proc mounted?)", err)
	}
	st, stErr := bootstatus.ReadFile(s.StatusFile)
	var kernels []KernelInitramfs
	if s.Boot != "" {
		kernels = InstalledKernels(s.Boot)
	}
	return Evaluate(Inputs{Mountinfo: bytes.NewReader(mi), Status: st, StatusErr: stErr, StatusFile: s.StatusFile, Statfs: StatfsOf, Zram: ZramOf, Kernels: kernels})
}

// ZramOf reads the zram device behind a mount source through /sys; nil,
// nil when the source is no zram device.
func ZramOf(source string) (*zram.Stat, error) {
	d, ok := zram.ForSource("/sys", source)
	if !ok {
		return nil, nil
	}
	return d.Stat()
}

// ZramAt is ZramOf for the filesystem mounted at path (the top mount
// there, as the mount table lists it).
func ZramAt(path string) (*zram.Stat, error) {
	mounts, err := mountfs.ReadMountinfo()
	if err != nil {
		return nil, err
	}
	m, ok := mountfs.MountAt(mounts, path)
	if !ok {
		return nil, nil
	}
	return ZramOf(m.Source)
}

// StatfsOf calls statfs(2).
func StatfsOf(path string) (Statfs, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return Statfs{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return Statfs{Bsize: int64(s.Bsize), Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree}, nil
}
