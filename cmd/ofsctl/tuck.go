package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/tuck"
)

func init() {
	program.Commands["tuck"] = cli.Command{
		Summary: "replace the read-only tree mounted at TARGET with NEW (an image or a folder) with no moment where TARGET is empty",
		Run:     runTuck,
	}
}

func runTuck(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("tuck", "[--type FSTYPE] [--over] [--json] TARGET NEW", stderr)
	fstype := fs.String("type", "squashfs", "the filesystem type of an image NEW")
	over := fs.Bool("over", false, "mount over the old tree instead of beneath it (what kernels before 6.5 get anyway)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("%w: want TARGET (where the old tree is mounted) and NEW (an image file or a folder)", cli.ErrUsage)
	}
	res, err := tuck.Swap(tuck.Options{Target: fs.Arg(0), Source: fs.Arg(1), FSType: *fstype, NoBeneath: *over})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "%s now holds %s (%s)\n", res.Target, res.Source, res.Method)
	if res.Note != "" {
		fmt.Fprintf(stderr, "ofsctl tuck: note: %s\n", res.Note)
	}
	return nil
}
