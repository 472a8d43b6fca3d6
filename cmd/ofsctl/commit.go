package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/commitchanges"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
)

func init() {
	program.Commands["commit"] = cli.Command{
		Summary: "keep chosen changes: copy them from the RAM layer into the real root (writable only meanwhile); --dry-run lists them",
		Run:     runCommit,
	}
}

func runCommit(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("commit", "[--dry-run] [--json] [--lower DIR --upper DIR] PATH...", stderr)
	dry := fs.Bool("dry-run", false, "only list what would change in the real root")
	asJSON := fs.Bool("json", false, "list the changes as JSON")
	lower, upper := layerFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: name the files or folders whose changes to keep (ofsctl diff lists them)", cli.ErrUsage)
	}
	plan, err := commitchanges.Commit(commitchanges.Options{
		Lower: *lower, Upper: *upper, Paths: fs.Args(), Ignore: layerIgnore(*lower, *upper), DryRun: *dry,
	})
	var typo *commitchanges.ErrNoSuchPath
	if errors.As(err, &typo) {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	if plan == nil {
		plan = []overlaydiff.Change{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(struct {
			DryRun  bool                 `json:"dry_run"`
			Changes []overlaydiff.Change `json:"changes"`
		}{*dry, plan}); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		for _, c := range plan {
			fmt.Fprintln(stdout, c)
		}
		switch {
		case len(plan) == 0 && err == nil:
			fmt.Fprintf(stderr, "ofsctl commit: nothing to keep under %q: it is the same in the real root\n", fs.Args())
		case *dry:
			fmt.Fprintf(stderr, "ofsctl commit: dry run: %d changes would be written to %s\n", len(plan), *lower)
		case err == nil:
			fmt.Fprintf(stderr, "ofsctl commit: %d changes written to %s, which is read-only again\n", len(plan), *lower)
		}
	}
	return err
}
