// Package initramfs assembles the initramfs for a board: the static
// cgo-free ofsroot init cross-compiled for the board's architecture, the
// kernel modules the board lists with their dependencies in load order,
// and the /dev/console node, packed as a reproducible newc cpio archive
// compressed with gzip (default), xz or zstd.
package initramfs

import (
	"errors"

	"github.com/ofsroot/ofsroot/board"
)

// Options say what to build.
type Options struct {
	Board board.Board
	// Kernel is a Debian linux-image .deb or the folder `dpkg -x` left.
	Kernel string
	// Output is the file to write.
	Output string
	// Compression is "gzip" (default), "xz", "zstd" or "none".
	Compression string
	// InitBinary, if set, is a prebuilt init to use instead of building
	// cmd/init from this module's source.
	InitBinary string
	// WithoutModules leaves these modules out (by name), e.g. "overlay"
	// to test the fail-closed path.
	WithoutModules []string
	// SourceDateEpoch is the time stamped on every archive entry.
	SourceDateEpoch int64
}

// Result reports what was built.
type Result struct {
	KernelVersion     string
	Modules           []string // in load order, by path inside the archive
	UncompressedBytes int64
	CompressedBytes   int64
	SHA256            string
}

// Build writes the initramfs described by o.
func Build(o Options) (*Result, error) {
	return nil, errors.New("initramfs.Build: not written yet")
}
