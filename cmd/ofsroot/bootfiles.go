package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/boot"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

func init() {
	program.Commands["bootfiles"] = cli.Command{
		Summary: "write a U-Boot board's boot partition: boot.scr, uInitrd (the initramfs), zImage and the device tree",
		Run:     runBootfiles,
	}
}

const bootfilesSynopsis = "--board NAME --kernel DEB|DIR --output DIR [--root SPEC] [--append WORDS] [--compress gzip|xz|zstd|none] [--init PREBUILT] [--fw-env-config FILE] [--protect-by-default]"

// runBootfiles builds the initramfs for a U-Boot board and writes what
// goes on its boot partition. SOURCE_DATE_EPOCH, if set, stamps the
// images and files (0 otherwise), so the output is reproducible.
func runBootfiles(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("bootfiles", bootfilesSynopsis, stderr)
	bf := addBuildFlags(fs, "`NAME` of a board that boots with U-Boot: "+strings.Join(ubootBoards(), ", "), "`DIR` to write the boot partition's files into (created if missing)")
	root := fs.String("root", "", "root= `SPEC` for the kernel (default: the partition boot.scr is loaded from, by PARTUUID)")
	appendWords := fs.String("append", "", "more kernel command-line `WORDS`, space-separated, always added")
	fwEnv := fs.String("fw-env-config", "", "also write the fw_env.config the board's root needs (as /etc/fw_env.config) to `FILE`")
	protect := fs.Bool("protect-by-default", false, "an unset overlayfs means protected (overlayfs=yes), not a plain boot: for field devices, so that a new board, or an environment lost to a power cut while it was saved (U-Boot then uses its built-in one), boots protected; only overlayfs=no or ofs-once boots plainly")
	b, epoch, err := bf.parse(fs, args, "bootfiles", bootfilesSynopsis)
	if err != nil {
		return err
	}
	if b.UBoot == nil {
		return fmt.Errorf("%w: board %s does not boot with U-Boot; boards that do: %s", errUsage, b.Name, strings.Join(ubootBoards(), ", "))
	}
	opts := boot.Options{Root: *root, Append: strings.Fields(*appendWords), ProtectByDefault: *protect}
	// Render once now so that a bad --root or --append is a usage error
	// before anything slow happens.
	if _, err := boot.Script(b, opts); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "ofsroot bootfiles: "+format+"\n", args...) }

	k, cleanup, err := kernelpkg.OpenKernel(*bf.kernel, logf)
	if err != nil {
		return err
	}
	defer cleanup()
	dtb, err := k.DTB(b.DeviceTree)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", *bf.kernel, err)
	}

	if err := os.MkdirAll(*bf.output, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(*bf.output, ".bootfiles-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	initrd := filepath.Join(work, "initramfs")
	res, err := initramfs.Build(initramfs.Options{
		Board:           b,
		Kernel:          *bf.kernel,
		Output:          initrd,
		Compression:     *bf.compress,
		InitBinary:      *bf.init,
		SourceDateEpoch: epoch,
		Log:             logf,
	})
	if err != nil {
		return err
	}
	names, err := boot.WritePartition(*bf.output, b, boot.Inputs{
		Vmlinuz: k.Vmlinuz, DTB: dtb, Initramfs: initrd, Compression: res.Compression,
		Options: opts, Time: time.Unix(epoch, 0),
	})
	if err != nil {
		return err
	}
	if *fwEnv != "" {
		if err := os.WriteFile(*fwEnv, []byte(b.UBoot.FwEnvConfig()), 0o644); err != nil {
			return err
		}
	}
	bootfilesSummary(stdout, b, *bf.output, names, res, opts, *fwEnv)
	return nil
}

// ubootBoards lists the boards with a uboot section.
func ubootBoards() []string {
	var names []string
	all, _ := board.All()
	for _, b := range all {
		if b.UBoot != nil {
			names = append(names, b.Name)
		}
	}
	return names
}

func bootfilesSummary(w io.Writer, b board.Board, dir string, names []string, res *initramfs.Result, opts boot.Options, fwEnv string) {
	fmt.Fprintf(w, "wrote the boot partition of %s to %s:\n", b.Name, dir)
	for _, n := range names {
		size := ""
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
			size = units.Bytes(fi.Size())
		}
		what := map[string]string{
			boot.CommandFile: "the boot script's commands (to read; U-Boot runs boot.scr)",
			boot.ScriptFile:  "U-Boot script image",
			boot.InitrdFile:  "U-Boot ramdisk image of the initramfs (" + res.Compression + ")",
			boot.KernelFile:  "kernel " + res.KernelVersion,
		}[n]
		if n == b.DeviceTree {
			what = "device tree"
		}
		fmt.Fprintf(w, "  %-24s %10s  %s\n", n, size, what)
	}
	fmt.Fprintf(w, "  modules   %s\n", strings.Join(res.ModuleNames, " "))
	root := opts.Root
	if root == "" {
		root = "PARTUUID of the partition boot.scr is on"
	}
	fmt.Fprintf(w, "  root=     %s\n", root)
	if opts.ProtectByDefault {
		fmt.Fprintf(w, "  overlayfs unset: protected (--protect-by-default); overlayfs=no or ofs-once for a plain boot\n")
	} else {
		fmt.Fprintf(w, "  overlayfs unset: a plain boot")
		if len(b.UBoot.Env) == 1 {
			fmt.Fprintf(w, "; the environment is a single copy, so a power cut while it is saved also means a plain boot: --protect-by-default for field devices")
		}
		fmt.Fprintf(w, "\n")
	}
	u := b.UBoot
	fmt.Fprintf(w, "  loads     zImage at %s, uInitrd at %s, %s at %s\n", u.KernelAddr, u.RamdiskAddr, b.DeviceTree, u.FDTAddr)
	fmt.Fprintf(w, "Copy them to the board's boot partition. At the U-Boot prompt:\n")
	fmt.Fprintf(w, "  setenv overlayfs yes; setenv ofs-size 20; saveenv; boot   (protected from now on)\n")
	fmt.Fprintf(w, "  setenv ofs-once 1; saveenv; boot                         (one maintenance boot)\n")
	fmt.Fprintf(w, "or from Linux: ofsctl overlay on | off | size N | once\n")
	if fwEnv != "" {
		fmt.Fprintf(w, "wrote %s: put it in the root as /etc/fw_env.config (environment in %s)\n", fwEnv, u.EnvMedium)
	} else {
		fmt.Fprintf(w, "The root needs /etc/fw_env.config for ofsctl and fw_setenv (--fw-env-config writes it):\n%s", u.FwEnvConfig())
	}
}
