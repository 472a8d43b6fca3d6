package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"github.com/ofsroot/ofsroot/pkg/imageinstall"
)

func init() {
	program.Commands["install"] = cli.Command{
		Summary: "put the initramfs and command line into an existing image, block device or mounted root, keeping copies of what it replaces",
		Run:     runInstall,
	}
}

const installSynopsis = "--board NAME [--kernel DEB|DIR] [--initramfs FILE] [--cmdline WORDS] TARGET   (TARGET: image file, block device, or mounted root folder)"

func runInstall(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("install", installSynopsis, stderr)
	boardName := fs.String("board", "", "`NAME` of the board: "+strings.Join(board.Names(), ", "))
	kernel := fs.String("kernel", "", "the target's kernel as a linux-image `DEB` or unpacked DIR (default: the one kernel whose modules the target's root has)")
	initrd := fs.String("initramfs", "", "prebuilt ofsroot initramfs `FILE` (default: built for the board from the kernel)")
	initBin := fs.String("init", "", "`PREBUILT` init binary for the initramfs build")
	cmdline := fs.String("cmdline", strings.Join(diskimage.DefaultCmdline, " "), "`WORDS` to put on the kernel command line (extlinux.conf append lines, cmdline.txt)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one TARGET, got %q (ofsroot install %s)", errUsage, pos, installSynopsis)
	}
	if *boardName == "" {
		return fmt.Errorf("%w: missing --board (ofsroot install %s)", errUsage, installSynopsis)
	}
	b, err := board.Lookup(*boardName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for _, f := range []struct{ name, path string }{{"TARGET", pos[0]}, {"--kernel", *kernel}, {"--initramfs", *initrd}, {"--init", *initBin}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%w: %s %s: %v", errUsage, f.name, f.path, initramfsPathErr(err))
		}
	}
	epoch, err := imageEpoch()
	if err != nil {
		return err
	}
	res, err := imageinstall.Install(imageinstall.Options{
		Board: b, Kernel: *kernel, Initramfs: *initrd, InitBinary: *initBin, Target: pos[0],
		Cmdline: strings.Fields(*cmdline), SourceDateEpoch: epoch,
		Log: func(format string, args ...any) { fmt.Fprintf(stderr, "ofsroot install: "+format+"\n", args...) },
	})
	if res != nil {
		fmt.Fprintf(stdout, "installed ofsroot for %s (kernel %s) into %s\n", b.Name, res.KernelVersion, pos[0])
		fmt.Fprintf(stdout, "  root  %s\n  boot  %s\n", res.Root, res.Boot)
		for _, c := range res.Changes {
			fmt.Fprintf(stdout, "  %s\n", c)
		}
		if err == nil {
			fmt.Fprintf(stdout, "  nothing else was changed\n")
		}
		for _, a := range res.Advice {
			fmt.Fprintf(stdout, "  to do: %s\n", a)
		}
	}
	return err
}
