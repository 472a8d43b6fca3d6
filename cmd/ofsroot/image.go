package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
)

func init() {
	program.Commands["image"] = cli.Command{
		Summary: "build a flashable SD/eMMC image: MBR or GPT, FAT boot partition, ext4 or squashfs root, optional data partition",
		Run:     runImage,
	}
}

const imageSynopsis = "--board NAME --kernel DEB|DIR --rootfs DIR|TAR --output FILE [--root-type ext4|squashfs] [--table mbr|gpt] [--boot-size SIZE] [--root-size SIZE] [--data-size SIZE] [--initramfs FILE] [--boot-file SRC[:NAME]]... [--cmdline WORDS] [--extlinux]"

// imageList is a repeatable string flag.
type imageList []string

func (l *imageList) String() string { return strings.Join(*l, ",") }

func (l *imageList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

// imageSize is a size flag: 64M, 1G, 512K or bytes; a multiple of 1 MiB.
type imageSize int64

func (s *imageSize) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *imageSize) Set(v string) error {
	n, err := diskimage.ParseSize(v)
	if err != nil {
		return err
	}
	if n%diskimage.MiB != 0 {
		return fmt.Errorf("%s is not a multiple of 1 MiB (partitions are aligned to 1 MiB)", v)
	}
	*s = imageSize(n)
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (0 when unset).
func imageEpoch() (int64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 1<<32-1 {
		return 0, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a time in seconds since 1970 (1 to %d)", errUsage, s, int64(1<<32-1))
	}
	return n, nil
}

func runImage(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("image", imageSynopsis, stderr)
	boardName := fs.String("board", "", "`NAME` of the board: "+strings.Join(board.Names(), ", "))
	kernel := fs.String("kernel", "", "the kernel: a Debian linux-image `DEB`, or the DIR that dpkg -x made of one")
	rootfs := fs.String("rootfs", "", "the root: a `DIR`, or a TAR archive (.tar, .tar.gz, .tar.xz, .tar.zst; unpacked as root to keep owners and device nodes)")
	output := fs.String("output", "", "image `FILE` to write (replaced when complete)")
	rootType := fs.String("root-type", "ext4", "`TYPE` of the root filesystem: ext4 (mkfs.ext4 -d) or squashfs (mksquashfs; read-only by construction)")
	table := fs.String("table", "mbr", "partition `TABLE`: mbr (with a disk signature, for root=PARTUUID=) or gpt")
	var bootSize, rootSize, dataSize imageSize
	fs.Var(&bootSize, "boot-size", fmt.Sprintf("boot partition `SIZE` (e.g. 64M); default: its files + %d%% + %d MiB, at least %d MiB", diskimage.BootMarginPercent, diskimage.BootMarginBytes>>20, diskimage.BootMin>>20))
	fs.Var(&rootSize, "root-size", fmt.Sprintf("root partition `SIZE`; default: ext4: its files + %d%% + %d MiB, at least %d MiB; squashfs: the squashfs rounded up to 1 MiB", diskimage.RootMarginPercent, diskimage.RootMarginBytes>>20, diskimage.RootMin>>20))
	fs.Var(&dataSize, "data-size", "add an empty ext4 data partition (label \"data\") of `SIZE`")
	initrd := fs.String("initramfs", "", "prebuilt ofsroot initramfs `FILE` (default: built from --kernel, as ofsroot initramfs does)")
	initBin := fs.String("init", "", "`PREBUILT` init binary for the initramfs build")
	cmdline := fs.String("cmdline", strings.Join(diskimage.DefaultCmdline, " "), "`WORDS` added after console= root=PARTUUID=... rootfstype= ro rootwait")
	var bootFiles imageList
	fs.Var(&bootFiles, "boot-file", "extra file for the boot partition as `SRC[:NAME]` (repeatable)")
	extlinux := fs.Bool("extlinux", false, "on a U-Boot board, write extlinux.conf (the command line fixed in it; U-Boot's distro boot prefers it to any boot.scr) instead of ofsroot's boot.scr, which reads overlayfs, ofs-size and ofs-once from the U-Boot environment")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (ofsroot image %s)", errUsage, pos, imageSynopsis)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"--board", *boardName}, {"--kernel", *kernel}, {"--rootfs", *rootfs}, {"--output", *output}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (ofsroot image %s)", errUsage, strings.Join(missing, ", "), imageSynopsis)
	}
	b, err := board.Lookup(*boardName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *rootType != "ext4" && *rootType != "squashfs" {
		return fmt.Errorf("%w: --root-type %q: want ext4 or squashfs", errUsage, *rootType)
	}
	if *table != "mbr" && *table != "gpt" {
		return fmt.Errorf("%w: --table %q: want mbr or gpt", errUsage, *table)
	}
	for _, f := range []struct{ name, path string }{{"--kernel", *kernel}, {"--rootfs", *rootfs}, {"--initramfs", *initrd}, {"--init", *initBin}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%w: %s %s: %v", errUsage, f.name, f.path, initramfsPathErr(err))
		}
	}
	if err := checkOutputFolder("--output", *output); err != nil {
		return err
	}
	var files []diskimage.BootFile
	for _, bf := range bootFiles {
		src, name, ok := strings.Cut(bf, ":")
		if !ok {
			name = src[strings.LastIndex(src, "/")+1:]
		}
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("%w: --boot-file %s: %v", errUsage, src, initramfsPathErr(err))
		}
		files = append(files, diskimage.BootFile{Source: src, Name: name})
	}
	epoch, err := imageEpoch()
	if err != nil {
		return err
	}
	opts := diskimage.Options{
		Board: b, Kernel: *kernel, Initramfs: *initrd, InitBinary: *initBin, RootFS: *rootfs,
		RootType: *rootType, Table: *table, BootSize: int64(bootSize), RootSize: int64(rootSize), DataSize: int64(dataSize),
		BootFiles: files, Cmdline: strings.Fields(*cmdline), SourceDateEpoch: epoch, Output: *output,
		Log:      func(format string, args ...any) { fmt.Fprintf(stderr, "ofsroot image: "+format+"\n", args...) },
		Extlinux: *extlinux,
	}
	if err := opts.CheckBootFiles(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	res, err := diskimage.Build(opts)
	if err != nil {
		return err
	}
	imageSummary(stdout, b, res)
	return nil
}

func imageSummary(w io.Writer, b board.Board, res *diskimage.Result) {
	l := res.Layout
	id := "disk signature 0x" + l.DiskID
	if l.Table == "gpt" {
		id = "disk GUID " + l.DiskID
	}
	fmt.Fprintf(w, "wrote %s: %s, %s table, %s\n", res.Output, units.Bytes(l.SizeBytes), strings.ToUpper(l.Table), id)
	fmt.Fprintf(w, "  board     %s, kernel %s\n", b.Name, res.KernelVersion)
	for _, p := range l.Partitions {
		fs := p.FSType
		if p.FSUUID != "" {
			fs += " UUID=" + p.FSUUID
		}
		if p.Label != "" {
			fs += " LABEL=" + p.Label
		}
		fmt.Fprintf(w, "  %d %-5s   %8s at %s  PARTUUID=%s  %s\n", p.Number, p.Role, units.Bytes(p.Size), units.Bytes(p.Start), p.PartUUID, fs)
	}
	fmt.Fprintf(w, "  boot files %s\n", strings.Join(res.BootFiles, " "))
	fmt.Fprintf(w, "  root      %d entries\n", res.RootEntries)
	if res.BuildID != "" {
		fmt.Fprintf(w, "  build id  %s (/%s)\n", res.BuildID, diskimage.BuildIDPath)
	}
	fmt.Fprintf(w, "  cmdline   %s\n", res.Cmdline)
	fmt.Fprintf(w, "  sha256    %s\n", res.SHA256)
}
