package bootlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
)

// RootFSBytes is the size of the test root filesystem.
const RootFSBytes = 32 << 20

// RootPartition is the partition of the MBR disk that holds the root.
const RootPartition = 1

// Setup is what the boot lab prepared for one board: its kernel, the
// probe, and the test root as a bare filesystem and as a disk.
type Setup struct {
	Board  board.Board
	Kernel Kernel
	// Work is the folder everything below lives in.
	Work string
	// Probe is the probe binary for the board.
	Probe string
	// Tree is the test root folder.
	Tree string
	// FSImage is the bare ext4 filesystem image of Tree.
	FSImage string
	// DiskImage is an MBR disk (signature DiskID) holding the same
	// filesystem as partition RootPartition.
	DiskImage string
	Layout    DiskLayout
	// Cache is the download cache the kernel came from (NewSetup's
	// cacheDir); the systemd root's debootstrap is kept there too.
	Cache string

	// systemd is SystemdImage's state (systemdroot.go), shared by the
	// copies tests make of a Setup to change its board or kernel.
	systemd *systemdRoot
}

// NewSetup fetches b's kernel into cacheDir and builds the probe and the
// test root images in work (created if missing).
//
// Side effects: see FetchKernel; runs go build, mkfs.ext4 and sfdisk.
func NewSetup(b board.Board, cacheDir, work string) (*Setup, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	k, err := FetchKernel(cacheDir, b)
	if err != nil {
		return nil, err
	}
	s := &Setup{
		Board:     b,
		Kernel:    k,
		Work:      work,
		Probe:     filepath.Join(work, "probe"),
		Tree:      filepath.Join(work, "root"),
		FSImage:   filepath.Join(work, "root.ext4"),
		DiskImage: filepath.Join(work, "disk.img"),
		Cache:     cacheDir,
		systemd:   &systemdRoot{},
	}
	if err := BuildProbe(b, s.Probe); err != nil {
		return nil, err
	}
	os.RemoveAll(s.Tree)
	if err := WriteRootTree(s.Tree, s.Probe); err != nil {
		return nil, err
	}
	fs := Ext4{Dir: s.Tree, SizeBytes: RootFSBytes, Label: RootLabel, UUID: RootUUID}
	if err := MakeExt4(fs, s.FSImage); err != nil {
		return nil, err
	}
	s.Layout, err = MakeMBRDisk(Disk{FS: fs, Partition: RootPartition, PowerOfTwo: b.QEMU.DiskSizePowerOfTwo}, s.DiskImage)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Initramfs builds an initramfs for the board with o (Board, Kernel and,
// if empty, Output are filled in) and returns its path and the builder's
// report.
func (s *Setup) Initramfs(o initramfs.Options) (string, *initramfs.Result, error) {
	o.Board = s.Board
	o.Kernel = s.Kernel.Dir
	if o.Output == "" {
		o.Output = filepath.Join(s.Work, initramfsName(o)+".cpio")
	}
	if o.SourceDateEpoch == 0 {
		o.SourceDateEpoch = SourceDateEpoch
	}
	res, err := initramfs.Build(o)
	if err != nil {
		return "", nil, fmt.Errorf("initramfs for %s: %w", s.Board.Name, err)
	}
	return o.Output, res, nil
}

// initramfsName names a build by everything that changes its contents, so
// that two variants never write one file: the compression and the modules
// left out, readable, then a short hash of all the options but the board,
// kernel and output (which the lab fixes) and the log.
func initramfsName(o initramfs.Options) string {
	name := "initramfs"
	if o.Compression != "" {
		name += "-" + o.Compression
	}
	for _, m := range o.WithoutModules {
		name += "-no-" + m
	}
	key := o
	key.Board, key.Kernel, key.Output, key.Log = board.Board{}, "", "", nil
	sum := sha256.Sum256([]byte(fmt.Sprintf("%+v", key))) // maps print sorted
	return name + "-" + hex.EncodeToString(sum[:4])
}

// DefaultRoot names the image and root= word a plain boot of the board
// uses: the bare filesystem as the whole virtio disk on virtio-pci boards,
// else the partitioned disk (an SD card has to be partitioned).
func (s *Setup) DefaultRoot() (image, root string) {
	if s.Board.QEMU.Disk == "virtio-pci" {
		return s.FSImage, "root=" + s.Board.QEMU.DiskDevice
	}
	return s.DiskImage, "root=" + s.Board.QEMU.PartitionDevice(RootPartition)
}

// RunSpec is one probe boot.
type RunSpec struct {
	Initrd string
	// Image is the root image; Run boots a copy of it so that runs in
	// parallel do not share one (QEMU locks it) and the original stays
	// pristine.
	Image string
	// Append are the command line words after console=.
	Append []string
	// Dir receives the image copy and console.log.
	Dir    string
	Stream io.Writer
	// Replies are typed on the console as their prompts appear.
	Replies []Reply
	// ExtraDisks are attached after Image as they are, not copied:
	// what the guest writes to them stays for the next run.
	ExtraDisks []string
}

// Run is the outcome of a probe boot.
type Run struct {
	Console *Console
	// Report is what the probe said; nil with ReportErr set if it said
	// nothing (or something unparsable).
	Report    *Report
	ReportErr error
	// Image is the copy that was booted; ImageBefore and ImageAfter are
	// its SHA-256 before and after the run.
	Image                   string
	ImageBefore, ImageAfter string
}

// ImageUnchanged says whether the run left the disk image as it was.
func (r *Run) ImageUnchanged() bool {
	return r.ImageBefore != "" && r.ImageBefore == r.ImageAfter
}

// Run boots r with the board's kernel, hashing the image copy before and
// after. The error is Boot's; a missing probe report is in ReportErr.
func (s *Setup) Run(ctx context.Context, r RunSpec) (*Run, error) {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, err
	}
	out := &Run{}
	spec := BootSpec{
		Board:      s.Board,
		Kernel:     s.Kernel,
		Initrd:     r.Initrd,
		Append:     r.Append,
		Log:        filepath.Join(r.Dir, "console.log"),
		Stream:     r.Stream,
		Replies:    r.Replies,
		ExtraDisks: r.ExtraDisks,
	}
	if r.Image != "" {
		out.Image = filepath.Join(r.Dir, filepath.Base(r.Image))
		if err := CopySparse(r.Image, out.Image); err != nil {
			return nil, err
		}
		var err error
		if out.ImageBefore, err = diskimage.SHA256File(out.Image); err != nil {
			return nil, err
		}
		spec.Disk = out.Image
	}
	c, bootErr := Boot(ctx, spec)
	out.Console = c
	if c != nil {
		out.Report, out.ReportErr = ParseProbe(c.Text)
	}
	if out.Image != "" {
		var err error
		if out.ImageAfter, err = diskimage.SHA256File(out.Image); err != nil {
			return out, errors.Join(bootErr, err)
		}
	}
	return out, bootErr
}

// Words splits a command line string into words (on blanks; no quoting).
func Words(s string) []string { return strings.Fields(s) }
