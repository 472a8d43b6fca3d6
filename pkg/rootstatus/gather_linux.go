package rootstatus

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
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
	return Evaluate(Inputs{Mountinfo: bytes.NewReader(mi), Status: st, StatusErr: stErr, StatusFile: s.StatusFile, Statfs: StatfsOf, Kernels: kernels})
}

// StatfsOf calls statfs(2).
func StatfsOf(path string) (Statfs, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return Statfs{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return Statfs{Bsize: int64(s.Bsize), Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail, Files: s.Files, Ffree: s.Ffree}, nil
}
