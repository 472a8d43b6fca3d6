package main

import (
	"bufio"
	"fmt"
	"github.com/ofsroot/ofsroot/pkg/units"
	"io"
	"os"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/flash"
)

func init() {
	program.Commands["flash"] = cli.Command{
		Summary: "write a disk image (.img, .gz, .xz, .zst) to an SD card or disk and verify it; refuses mounted, system and too-small devices",
		Run:     runFlash,
	}
}

const flashSynopsis = "IMAGE DEVICE [--yes] [--to-file]"

// flashStdin is where the confirmation is read; tests replace it.
var flashStdin io.Reader = os.Stdin

func runFlash(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("flash", flashSynopsis, stderr)
	yes := fs.Bool("yes", false, "do not ask before overwriting the device (needed when not on a terminal)")
	toFile := fs.Bool("to-file", false, "the target may be a regular file (created or truncated) instead of a block device")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) != 2 {
		return fmt.Errorf("%w: want IMAGE and DEVICE, got %q (ofsroot flash %s)", errUsage, pos, flashSynopsis)
	}
	image, target := pos[0], pos[1]
	if _, err := os.Stat(image); err != nil {
		return fmt.Errorf("%w: image %s: %v", errUsage, image, initramfsPathErr(err))
	}
	progress := &flash.Progress{W: stderr, Terminal: isTerminal(stderr)}
	o := flash.Options{Image: image, Target: target, ToFile: *toFile, Progress: progress}
	if !*yes {
		interactive := isTerminal(flashStdin)
		o.Confirm = func(what string) bool {
			if strings.HasPrefix(what, "file ") {
				return true // --to-file: a file is what was asked for
			}
			if !interactive {
				fmt.Fprintf(stderr, "ofsroot flash: would overwrite %s; not on a terminal to ask: pass --yes\n", what)
				return false
			}
			fmt.Fprintf(stderr, "Overwrite %s? Everything on it is lost. Type yes: ", what)
			line, _ := bufio.NewReader(flashStdin).ReadString('\n')
			return strings.TrimSpace(line) == "yes"
		}
	}
	res, err := flash.Flash(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s to %s: %s (%s image), read back and verified\n", image, target, units.Bytes(res.Bytes), res.Compression)
	fmt.Fprintf(stdout, "  sha256 %s\n", res.SHA256)
	return nil
}
