package diskimage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ofsroot/ofsroot/board"
	bootscript "github.com/ofsroot/ofsroot/boot"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/flash"
	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

// BootFile is one extra file for the boot partition: the hook through
// which U-Boot files (boot.scr, uInitrd) made elsewhere are added.
type BootFile struct {
	Source string // file on the host
	Name   string // path on the boot partition, e.g. "boot.scr"
}

// Options say what image to build.
type Options struct {
	Board board.Board
	// Kernel is a Debian linux-image .deb or the folder `dpkg -x` made of
	// one.
	Kernel string
	// Initramfs is a prebuilt ofsroot initramfs; empty: built from Kernel
	// with initramfs.Build (InitBinary passed on).
	Initramfs  string
	InitBinary string
	// RootFS is the root: a folder, or a tar archive (compressed or not)
	// that is unpacked as root into a temporary folder.
	RootFS string
	// RootType is "ext4" (default) or "squashfs".
	RootType string
	// Table is "mbr" (default) or "gpt".
	Table string
	// BootSize, RootSize: bytes (multiples of 1 MiB); 0 = computed from
	// the contents with the margins of BootSize and RootSize. DataSize:
	// an empty ext4 data partition (label "data") of that size, 0 for
	// none.
	BootSize, RootSize, DataSize int64
	// BootFiles are added to the boot partition as they are.
	BootFiles []BootFile
	// Cmdline are the words after root=...; nil means DefaultCmdline.
	Cmdline []string
	// SourceDateEpoch, when not 0, stamps every time the image holds
	// and makes the identifiers depend on the inputs alone: the same
	// inputs give the same bytes. When 0, identifiers are random.
	SourceDateEpoch int64
	// Output is the image file, written atomically (a temporary file in
	// the same folder, renamed when complete).
	Output string
	// Log, if set, is told about each step.
	Log func(format string, args ...any)
	// Extlinux gives a U-Boot board an extlinux.conf instead of
	// ofsroot's boot.scr (see Build).
	Extlinux bool
}

// Result reports what was built.
type Result struct {
	Output        string
	Layout        Layout
	KernelVersion string
	Cmdline       string
	// BootFiles are the names on the boot partition, sorted.
	BootFiles []string
	// RootEntries counts the root's files, folders, links and nodes.
	RootEntries int64
	SHA256      string
	// BuildID is what the image's root says in /etc/ofsroot/build-id
	// (BuildIDPath); "" when the root brought its own.
	BuildID string
}

// Build writes the disk image o describes.
//
// On a board that boots with U-Boot, the boot partition holds ofsroot's
// boot.scr (boot package, made protect-by-default) and the files it
// loads (zImage, uInitrd, the device tree), with the image's command line
// as the script's fixed words: the environment's overlayfs, ofs-size and
// ofs-once come after them and decide, and an unset or lost environment
// boots protected. It has no extlinux.conf then, unless o.Extlinux: U-Boot's
// distro boot prefers an extlinux.conf to a boot.scr and would never run
// the script. Other boards get vmlinuz, initrd.img and an extlinux.conf.
//
// Side effects: temporary folders (removed); a .deb kernel unpacked
// into kernelpkg's cache (once); runs tar (for a tar root),
// mkfs.vfat, mcopy, mkfs.ext4, debugfs, mksquashfs, and go build when no
// initramfs is given; writes o.Output.
func Build(o Options) (*Result, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.RootType == "" {
		o.RootType = "ext4"
	}
	if o.Table == "" {
		o.Table = "mbr"
	}
	if o.RootType != "ext4" && o.RootType != "squashfs" {
		return nil, fmt.Errorf("root type %q: want ext4 or squashfs", o.RootType)
	}
	if o.Output == "" || o.RootFS == "" || o.Kernel == "" {
		return nil, errors.New("diskimage: Output, RootFS and Kernel are required")
	}
	for _, n := range []int64{o.BootSize, o.RootSize, o.DataSize} {
		if n < 0 || n%MiB != 0 {
			return nil, fmt.Errorf("size %d: want a multiple of 1 MiB", n)
		}
	}
	if err := o.CheckBootFiles(); err != nil {
		return nil, err
	}
	tools := []string{"mkfs.vfat", "mcopy"}
	if o.RootType == "ext4" || o.DataSize > 0 {
		tools = append(tools, "mkfs.ext4", "debugfs")
	}
	if o.RootType == "squashfs" {
		tools = append(tools, "mksquashfs")
	}
	if err := needTools(tools...); err != nil {
		return nil, err
	}

	work, err := os.MkdirTemp(filepath.Dir(o.Output), ".ofsroot-image-")
	if err != nil {
		return nil, fmt.Errorf("temporary folder beside %s: %w", o.Output, err)
	}
	defer os.RemoveAll(work)

	// The root tree.
	tree := o.RootFS
	st, err := os.Stat(o.RootFS)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", o.RootFS, err)
	}
	if !st.IsDir() {
		tree = filepath.Join(work, "root")
		logf("unpacking %s", o.RootFS)
		if err := UnpackTar(o.RootFS, tree); err != nil {
			return nil, err
		}
	}
	m, err := measureTree(tree, o.SourceDateEpoch)
	if err != nil {
		return nil, err
	}

	// Kernel, device tree, initramfs.
	k, cleanup, err := kernelpkg.OpenKernel(o.Kernel, logf)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	boot := filepath.Join(work, "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		return nil, err
	}
	// A boot script loads its own files; without one, the generic ones.
	script := o.Board.UBoot != nil && !o.Extlinux
	kernelDst, initrd := filepath.Join(boot, KernelFile), filepath.Join(boot, InitrdFile)
	if script {
		kernelDst, initrd = k.Vmlinuz, filepath.Join(work, InitrdFile)
	} else if err := copyFile(k.Vmlinuz, kernelDst); err != nil {
		return nil, err
	}
	dtbName, dtbPath := "", ""
	if o.Board.DeviceTree != "" {
		dtbPath, err = k.DTB(o.Board.DeviceTree)
		if err != nil {
			return nil, err
		}
		dtbName = filepath.Base(dtbPath)
		if err := copyFile(dtbPath, filepath.Join(boot, dtbName)); err != nil {
			return nil, err
		}
	}
	var compression string
	if o.Initramfs != "" {
		if err = copyFile(o.Initramfs, initrd); err == nil {
			compression, err = sniffFile(initrd)
		}
	} else {
		logf("building the initramfs for %s from %s", o.Board.Name, o.Kernel)
		var res *initramfs.Result
		res, err = initramfs.Build(initramfs.Options{
			Board: o.Board, Kernel: o.Kernel, Output: initrd, InitBinary: o.InitBinary,
			SourceDateEpoch: o.SourceDateEpoch, Log: o.Log,
		})
		if err == nil {
			compression = res.Compression // the builder's choice for this kernel
		}
	}
	if err != nil {
		return nil, err
	}
	for _, f := range o.BootFiles {
		name := filepath.Clean("/" + f.Name)[1:]
		if name == "" {
			return nil, fmt.Errorf("boot file %s: empty name", f.Source)
		}
		dst := filepath.Join(boot, name)
		if _, err := os.Stat(dst); err == nil {
			return nil, fmt.Errorf("boot file %s: %s is already on the boot partition", f.Source, name)
		}

		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(f.Source, dst); err != nil {
			return nil, err
		}
	}

	// The seed of every identifier.
	seed := fmt.Sprintf("board=%s table=%s root=%s epoch=%d tree=%s kernel=%s data=%d",
		o.Board.Name, o.Table, o.RootType, o.SourceDateEpoch, m.Digest, k.Version, o.DataSize)
	if o.SourceDateEpoch == 0 {
		var r [16]byte
		rand.Read(r[:])
		seed += " random=" + hex.EncodeToString(r[:])
	}

	// The build id the init binds a persistent layer to.
	id := buildID(seed)
	idDirs, keep, err := buildIDPlan(tree)
	if err != nil {
		return nil, err
	}
	if keep != "" {
		logf("%s", keep)
		id = ""
	}

	// The root filesystem's size.
	var squash string
	rootSize := o.RootSize
	if o.RootType == "squashfs" {
		squash = filepath.Join(work, "root.squashfs")
		logf("making the squashfs root")
		var pseudo []string
		if id != "" {
			pseudo = squashfsBuildID(idDirs, id)
		}
		if err := mksquashfs(tree, squash, o.SourceDateEpoch, pseudo...); err != nil {
			return nil, err
		}
		sst, err := os.Stat(squash)
		if err != nil {
			return nil, err
		}
		need := alignUp(sst.Size())
		if rootSize == 0 {
			rootSize = need
		} else if rootSize < need {
			return nil, fmt.Errorf("root size %d MiB: the squashfs needs %d MiB", rootSize/MiB, need/MiB)
		}
	} else if rootSize == 0 {
		rootSize = RootSize(m.Blocks, m.Entries)
	}

	// Boot partition contents that depend on the layout.
	bootSize := o.BootSize
	spec := PlanSpec{Table: o.Table, BootSize: max(bootSize, MiB), RootSize: rootSize, DataSize: o.DataSize,
		RootFSType: o.RootType, PowerOfTwo: o.Board.QEMU.DiskSizePowerOfTwo, Seed: seed}
	l, err := Plan(spec) // identifiers only; sizes are final below
	if err != nil {
		return nil, err
	}
	root, _ := l.Partition(RoleRoot)
	cmdline := Cmdline(o.Board.Console, root, o.Cmdline)
	if err := os.WriteFile(filepath.Join(boot, CmdlineFile), []byte(cmdline+"\n"), 0o644); err != nil {
		return nil, err
	}
	if script {
		var words []string
		for _, w := range strings.Fields(Cmdline("", root, o.Cmdline)) {
			if !strings.HasPrefix(w, "root=") {
				words = append(words, w)
			}
		}
		logf("writing boot.scr (protected unless the U-Boot environment says overlayfs=no) and the files it loads")
		t := time.Unix(o.SourceDateEpoch, 0)
		if o.SourceDateEpoch == 0 {
			t = time.Now()
		}
		if _, err := bootscript.WritePartition(boot, o.Board, bootscript.Inputs{
			Vmlinuz: kernelDst, DTB: dtbPath, Initramfs: initrd, Compression: compression,
			Options: bootscript.Options{Root: "PARTUUID=" + root.PartUUID, Append: words, ProtectByDefault: true},
			Time:    t,
		}); err != nil {
			return nil, fmt.Errorf("boot script: %w", err)
		}
	} else {
		if err := os.MkdirAll(filepath.Join(boot, ExtlinuxDir), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(boot, ExtlinuxFile), []byte(Extlinux(o.Board.Name, dtbName, cmdline)), 0o644); err != nil {
			return nil, err
		}
	}
	bm, err := measureTree(boot, o.SourceDateEpoch)
	if err != nil {
		return nil, err
	}
	if bootSize == 0 {
		bootSize = BootSize(bm.Bytes)
	} else if bootSize < alignUp(bm.Bytes+bm.Bytes/10+MiB) {
		return nil, fmt.Errorf("boot size %d MiB: its files take %d KiB; give at least %d MiB", bootSize/MiB, bm.Bytes/1024, alignUp(bm.Bytes+bm.Bytes/10+MiB)/MiB)
	}
	spec.BootSize = bootSize
	if l, err = Plan(spec); err != nil {
		return nil, err
	}

	// The disk.
	tmp := filepath.Join(work, "disk.img")
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(l.SizeBytes); err != nil {
		f.Close()
		return nil, err
	}
	err = writeTable(f, l)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	for _, p := range l.Partitions {
		logf("partition %d (%s): %s, %d MiB", p.Number, p.Role, p.FSType, p.Size/MiB)
		switch {
		case p.Role == RoleBoot:
			err = makeVFAT(tmp, p, boot, o.SourceDateEpoch)
		case p.FSType == "squashfs":
			err = writeAt(tmp, squash, p)
		case p.Role == RoleRoot:
			err = makeExt4(tmp, p, tree, m.Entries, o.SourceDateEpoch)
			if err == nil && id != "" {
				err = ext4BuildID(tmp, p.Start, idDirs, id, o.SourceDateEpoch)
			}
		default:
			err = makeExt4(tmp, p, "", 0, o.SourceDateEpoch)
		}
		if err != nil {
			return nil, err
		}
	}
	sum, err := SHA256File(tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, o.Output); err != nil {
		return nil, err
	}
	names, err := listFiles(boot)
	if err != nil {
		return nil, err
	}
	return &Result{Output: o.Output, Layout: l, KernelVersion: k.Version, Cmdline: cmdline, BuildID: id,
		BootFiles: names, RootEntries: m.Entries, SHA256: sum}, nil
}

// TreeStats measures a folder.
type TreeStats struct {
	Entries int64 // files, folders, links, nodes (the root folder too)
	Bytes   int64 // sum of regular file sizes
	Blocks  int64 // 4 KiB blocks: files, folders, long symbolic links
	// Digest is a hash of every entry's name, type, mode, owner, size,
	// modification time, link target and device number (not contents).
	Digest string
}

// MeasureTree walks dir without following links.
func MeasureTree(dir string) (TreeStats, error) { return measureTree(dir, 0) }

// measureTree is MeasureTree with modification times later than clamp
// (when not 0) counted as clamp, as the image will hold them.
func measureTree(dir string, clamp int64) (TreeStats, error) {
	var s TreeStats
	h := sha256.New()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s.Entries++
		uid, gid, rdev := statOwner(fi)
		var target string
		switch {
		case fi.Mode().IsRegular():
			s.Bytes += fi.Size()
			s.Blocks += (fi.Size() + 4095) / 4096
		case fi.IsDir():
			s.Blocks++
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ = os.Readlink(p)
			if len(target) >= 60 {
				s.Blocks++
			}
		}
		mtime := fi.ModTime().Unix()
		if clamp != 0 && mtime > clamp {
			mtime = clamp
		}
		fmt.Fprintf(h, "%q %v %d:%d %d %d %q %d\n", rel, fi.Mode(), uid, gid, fi.Size(), mtime, target, rdev)
		return nil
	})
	if err != nil {
		return TreeStats{}, fmt.Errorf("reading the tree %s: %w", dir, err)
	}
	s.Digest = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// SHA256File returns the hex SHA-256 of a file.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ParseSize reads a size such as 64M, 1G, 512K or a plain byte count.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if n := len(t); n > 0 {
		switch strings.ToUpper(t[n-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	var v int64
	if _, err := fmt.Sscan(t, &v); err != nil || v < 0 || fmt.Sprint(v) != t {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional K, M or G", s)
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

// CheckBootFiles refuses extra boot files that would replace what the
// image writes itself: boot.scr and the files it loads, on a U-Boot
// board without Extlinux.
func (o Options) CheckBootFiles() error {
	if o.Board.UBoot == nil || o.Extlinux {
		return nil
	}
	for _, f := range o.BootFiles {
		name := filepath.Clean("/" + f.Name)[1:]
		if slices.Contains(bootscript.PartitionFiles(o.Board), name) {
			return fmt.Errorf("boot file %s: the image writes its own %s for U-Boot (with Extlinux, ofsroot image --extlinux, it boots through extlinux.conf and your files instead)", f.Source, name)
		}
	}
	return nil
}

// sniffFile names the compression of the file at p (flash.Sniff).
func sniffFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && n == 0 {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return flash.Sniff(head[:n]), nil
}
