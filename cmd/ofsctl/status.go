package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
)

// statusSources is where status reads the live system; tests change it.
var statusSources = rootstatus.Live

func init() {
	program.Commands["status"] = cli.Command{
		Summary: "is the root protected? mode, real root, RAM layer use, reasons (exit 0 protected, 3 plain, 4 degraded)",
		Run:     runStatus,
	}
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := program.FlagSet("status", "[--json]", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: status takes no arguments, got %q", cli.ErrUsage, fs.Args())
	}
	r, err := rootstatus.Gather(statusSources)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.Text(stdout)
	}
	if code := r.ExitCode(); code != 0 {
		return cli.ExitCode(code)
	}
	return nil
}
