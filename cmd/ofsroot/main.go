// Command ofsroot is the host tool: it builds initramfs images for a
// board, boots them in QEMU, and measures them. Each subcommand lives in
// its own file and registers itself in program.Commands.
package main

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/cli"
)

var program = &cli.Program{
	Name:     "ofsroot",
	Intro:    "build and test read-only-root boot images",
	Commands: map[string]cli.Command{},
}

// errUsage marks an error that is the user's to fix: exit code 2.
var errUsage = cli.ErrUsage

func main() {
	os.Exit(program.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// isTerminal says whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
