// Command ofsctl is the on-device tool for a protected root: it reports
// the protection status, shows what changed since boot, runs maintenance,
// and sets the U-Boot environment that chooses the next boot's mode. Each
// subcommand lives in its own file and registers itself in
// program.Commands.
package main

import (
	"os"

	"github.com/ofsroot/ofsroot/pkg/cli"
)

var program = &cli.Program{
	Name:     "ofsctl",
	Intro:    "inspect and maintain a root protected by ofsroot",
	Commands: map[string]cli.Command{},
}

func main() {
	os.Exit(program.Main(os.Args[1:], os.Stdout, os.Stderr))
}
