package kmod

import (
	"os"
	"path/filepath"

	"github.com/ofsroot/ofsroot/pkg/rootfile"
)

// openFile opens a file of a module tree for reading. The tree may be a
// hostile root's: the stale-initramfs fallback reads the real root's
// modules from PID 1. So only a regular file is opened for reading (a
// FIFO would block the init for ever, a device node may never end or act
// on open, as a watchdog does), its type checked before (package
// rootfile). Callers bound what they read.
func openFile(name string) (*os.File, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	return rootfile.Open("/", abs)
}

// readFile reads a file of a module tree (see openFile), at most limit
// bytes; a longer one is an error.
func readFile(name string, limit int64) ([]byte, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	return rootfile.ReadFile("/", abs, limit)
}
