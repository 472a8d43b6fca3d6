package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"github.com/ofsroot/ofsroot/pkg/cli"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
)

func init() {
	program.Commands["initramfs"] = cli.Command{
		Summary: "build a board's initramfs (init, kernel modules in load order, /dev/console) from a Debian kernel",
		Run:     runInitramfs,
	}
}

// initramfsSynopsis is the one-line usage of the command.
const initramfsSynopsis = "--board NAME (--kernel DEB|DIR | --kernel-version VERSION) --output FILE [--module NAME]... [--compress gzip|xz|zstd|none] [--init PREBUILT] [--shell STATIC-SH] [--zram STATIC-MKE2FS] [--apparmor] [--without-module NAME]..."

// initramfsList is a repeatable string flag.
type initramfsList []string

func (l *initramfsList) String() string { return strings.Join(*l, ",") }

func (l *initramfsList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty module name")
	}
	*l = append(*l, v)
	return nil
}

// runInitramfs parses the flags, builds the image and prints a summary.
// SOURCE_DATE_EPOCH, if set, stamps the archive entries.
func runInitramfs(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("initramfs", initramfsSynopsis, stderr)
	bf := addBuildFlags(fs, "`NAME` of the board to build for: "+strings.Join(board.Names(), ", "), "initramfs `FILE` to write (replaced atomically)")
	shell := fs.String("shell", "", "a static shell `FILE` for the board (e.g. bin/busybox of Debian's busybox-static) put at /bin/sh, so that ofs-rescue=shell has a shell")
	zramMkfs := fs.String("zram", "", "carry what ofs-upper=zram needs: the zram and compressor modules, and this static mke2fs `FILE` (e.g. bin/busybox of Debian's busybox-static; the same file as --shell is carried once) at /sbin/mke2fs")
	apparmor := fs.Bool("apparmor", false, "carry the firmware sandbox's AppArmor profile, compiled with this host's apparmor_parser, for overlayfs=sandbox")
	bf.kernelVersion = fs.String("kernel-version", "", "build for the installed kernel `VERSION` (uname -r): its modules from /lib/modules/VERSION under --kernel DIR (default /); what the kernel hooks of the package run")
	var extra initramfsList
	fs.Var(&extra, "module", "add module `NAME` (and what it needs) to the board's list (repeatable)")
	strip := fs.Bool("strip-modules", false, "strip the modules' signatures and BTF type information: faster loads, but the kernel taints itself (E, unsigned module) and refuses them under module.sig_enforce or Secure Boot lockdown; for boards without Secure Boot")
	var without initramfsList
	fs.Var(&without, "without-module", "leave module `NAME` out (repeatable), e.g. overlay to test the fail-closed path")
	b, epoch, err := bf.parse(fs, args, "initramfs", initramfsSynopsis)
	if err != nil {
		return err
	}
	if err := checkOutputFolder("--output", *bf.output); err != nil {
		return err
	}
	if *shell != "" {
		if _, err := os.Stat(*shell); err != nil {
			return fmt.Errorf("%w: --shell %s: %v", errUsage, *shell, initramfsPathErr(err))
		}
	}

	if *zramMkfs != "" {
		if _, err := os.Stat(*zramMkfs); err != nil {
			return fmt.Errorf("%w: --zram %s: %v", errUsage, *zramMkfs, initramfsPathErr(err))
		}
	}

	b.Modules = append(append([]string(nil), b.Modules...), extra...)
	res, err := initramfs.Build(initramfs.Options{
		Board:           b,
		Kernel:          *bf.kernel,
		KernelVersion:   *bf.kernelVersion,
		Output:          *bf.output,
		Compression:     *bf.compress,
		InitBinary:      *bf.init,
		Shell:           *shell,
		Zram:            *zramMkfs,
		SandboxAppArmor: *apparmor,
		WithoutModules:  without,
		StripModules:    *strip,
		SourceDateEpoch: epoch,
		Log: func(format string, args ...any) {
			fmt.Fprintf(stderr, "ofsroot initramfs: "+format+"\n", args...)
		},
	})
	if err != nil {
		return err
	}
	initramfsSummary(stdout, b, res)
	return nil
}

func initramfsKnownCompression(c string) bool {
	if c == "" {
		return true // the builder's default for the kernel
	}
	for _, k := range initramfs.Compressions {
		if c == k {
			return true
		}
	}
	return false
}

// initramfsPathErr drops the path from an *fs.PathError, which the
// message names already.
// checkOutputFolder is the usage check, before any slow work, that the
// folder a FILE flag writes into is there.
func checkOutputFolder(flag, file string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = errors.New("not a folder")
	}
	if err != nil {
		return fmt.Errorf("%w: %s %s: its folder %s: %v; make the folder first", errUsage, flag, file, dir, initramfsPathErr(err))
	}
	return nil
}

func initramfsPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func initramfsSummary(w io.Writer, b board.Board, res *initramfs.Result) {
	size := res.CompressedBytes
	fmt.Fprintf(w, "wrote %s: %s %s (cpio %s)\n", res.Output, units.Bytes(size), res.Compression, units.Bytes(res.UncompressedBytes))
	fmt.Fprintf(w, "  board     %s\n", b.Name)
	fmt.Fprintf(w, "  kernel    %s\n", res.KernelVersion)
	fmt.Fprintf(w, "  init      %s\n", units.Bytes(res.InitBytes))
	fmt.Fprintf(w, "  modules   %d, %s, in load order: %s\n", len(res.ModuleNames), units.Bytes(res.ModuleBytes), strings.Join(res.ModuleNames, " "))
	if len(res.Omitted) > 0 {
		fmt.Fprintf(w, "  left out  %s\n", strings.Join(res.Omitted, " "))
	}
	if len(res.Builtin) > 0 {
		fmt.Fprintf(w, "  built in  %s\n", strings.Join(res.Builtin, " "))
	}
	fmt.Fprintf(w, "  sha256    %s\n", res.SHA256)
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  warning:  %s\n", warn)
	}
	for _, note := range res.Notes {
		fmt.Fprintf(w, "  note:     %s\n", note)
	}
}
