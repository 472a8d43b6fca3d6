package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/maintenance"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
)

const maintSummary = "run a shell (or COMMAND) in the real root made writable for it alone, in a private mount namespace; read-only again when it ends"

func init() {
	program.Commands["maint"] = cli.Command{Summary: maintSummary, Run: runMaint("maint")}
	program.Commands["chroot"] = cli.Command{Summary: "the same as maint", Run: runMaint("chroot")}
}

// maintStdin is the command's input; tests change it.
var maintStdin io.Reader = os.Stdin

func runMaint(name string) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, stderr io.Writer) error {
		fs := program.FlagSet(name, "[--root DIR] [--] [COMMAND [ARG...]]", stderr)
		root := fs.String("root", "", "the real root's mount point (default: "+bootstatus.ReadOnlyLayer+" on a protected root, / on a degraded or plain one)")
		quiet := fs.Bool("quiet", false, "no notes on stderr")
		if err := cli.ParseInOrder(fs, args); err != nil {
			return err
		}
		if *root == "" {
			var err error
			if *root, err = defaultRealRoot(); err != nil {
				return err
			}
		}
		logf := func(f string, a ...any) {
			if !*quiet {
				fmt.Fprintf(stderr, "ofsctl %s: "+f+"\n", append([]any{name}, a...)...)
			}
		}
		// A root that was never read-only (a plain rw boot) is not
		// made read-only after: say so, never "read-only again".
		var st unix.Statfs_t
		wasRO := unix.Statfs(*root, &st) == nil && st.Flags&unix.ST_RDONLY != 0
		after := func() {
			if wasRO {
				logf("%s is read-only again", *root)
			} else {
				logf("%s was writable before the maintenance and stays writable", *root)
			}
		}
		err := maintenance.Run(maintenance.Options{
			Root: *root, Command: fs.Args(),
			Stdin: maintStdin, Stdout: stdout, Stderr: stderr, Log: logf,
		})
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			after()
			return cli.ExitCode(ee.ExitCode())
		}
		if err == nil {
			after()
		}
		return err
	}
}

// defaultRealRoot picks where the real root is from the kernel's mounts.
func defaultRealRoot() (string, error) {
	r, err := rootstatus.Gather(statusSources)
	if err != nil {
		return "", err
	}
	switch {
	case r.Mode == bootstatus.Sandbox:
		return "", fmt.Errorf("%w: this is a sandbox, not a device's protected root: give --root", cli.ErrUsage)
	case r.RealRoot == nil:
		return "", fmt.Errorf("cannot tell where the real root is mounted (%s): give --root", r.Mode)
	}
	return r.RealRoot.Mount, nil
}
