package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/atomicfile"
	"github.com/ofsroot/ofsroot/pkg/uimage"
)

// Inputs are what a board's boot partition is made of.
type Inputs struct {
	// Vmlinuz is the kernel (a zImage on 32-bit ARM), DTB the board's
	// device tree blob, Initramfs the archive initramfs.Build wrote.
	Vmlinuz, DTB, Initramfs string
	// Compression is the initramfs's ("gzip", "zstd", "xz", "none"). It
	// only labels uInitrd: U-Boot passes a ramdisk on as it is and the
	// kernel unpacks it. xz has no U-Boot code and is labelled none.
	Compression string
	Options
	// Time stamps boot.scr, uInitrd and every file written.
	Time time.Time
}

// RAMDiskComp is the uInitrd compression label for an initramfs
// compression.
func RAMDiskComp(compression string) uimage.Comp {
	switch compression {
	case "gzip":
		return uimage.CompGzip
	case "zstd":
		return uimage.CompZstd
	}
	return uimage.CompNone
}

// InitrdName is the image name uInitrd carries.
const InitrdName = "ofsroot initramfs"

// PartitionFiles names the files WritePartition writes for board b.
func PartitionFiles(b board.Board) []string {
	return []string{CommandFile, ScriptFile, InitrdFile, KernelFile, b.DeviceTree}
}

// WritePartition writes the files of board b's boot partition into dir
// (created if needed): boot.cmd (the script, to read), boot.scr,
// uInitrd, zImage and the device tree, and returns their names in that
// order. The same inputs give the same bytes.
//
// Side effects: creates dir and the files in it, replacing old ones.
func WritePartition(dir string, b board.Board, in Inputs) ([]string, error) {
	if in.Vmlinuz == "" || in.DTB == "" || in.Initramfs == "" {
		return nil, errors.New("boot partition: the kernel, the device tree and the initramfs are all needed")
	}
	arch, err := uimage.ArchForGOARCH(b.GOARCH)
	if err != nil {
		return nil, err
	}
	script, err := Script(b, in.Options)
	if err != nil {
		return nil, err
	}
	scr, err := Scr(b, script, in.Time)
	if err != nil {
		return nil, err
	}
	initrd, err := os.ReadFile(in.Initramfs)
	if err != nil {
		return nil, err
	}
	uinitrd, err := uimage.RAMDisk(arch, RAMDiskComp(in.Compression), InitrdName, in.Time, initrd)
	if err != nil {
		return nil, fmt.Errorf("uInitrd: %w", err)
	}
	kernel, err := os.ReadFile(in.Vmlinuz)
	if err != nil {
		return nil, err
	}
	dtb, err := os.ReadFile(in.DTB)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{CommandFile, []byte(script)},
		{ScriptFile, scr},
		{InitrdFile, uinitrd},
		{KernelFile, kernel},
		{b.DeviceTree, dtb},
	}
	var names []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeFile(p, f.data, in.Time); err != nil {
			return nil, err
		}
		names = append(names, f.name)
	}
	return names, nil
}

// writeFile replaces p (atomicfile.WriteFile) and stamps it with t.
func writeFile(p string, data []byte, t time.Time) error {
	if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	return os.Chtimes(p, t, t)
}
