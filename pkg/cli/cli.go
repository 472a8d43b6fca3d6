// Package cli is the small subcommand framework shared by the host tool
// (ofsroot) and the on-device tool (ofsctl): a table of commands, each
// registered from its own file, flag sets that print a synopsis, and one
// place that turns errors into exit codes.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/version"
)

// Command is one subcommand. Run gets the arguments after its name.
type Command struct {
	Summary string
	Run     func(args []string, stdout, stderr io.Writer) error
}

// ErrUsage marks an error that is the user's to fix: exit code 2.
var ErrUsage = errors.New("usage")

// ExitCode lets a command choose its exit code (ofsctl status exits 1
// when the root is not protected, for scripts) without printing an
// error.
type ExitCode int

func (e ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Program is a tool made of subcommands.
type Program struct {
	Name     string
	Intro    string // one line under the name in the usage text
	Commands map[string]Command

	// badFlags is set when a flag set made by FlagSet printed its usage
	// because of a bad flag: the command's error is then a usage error.
	badFlags bool
}

// Main runs the subcommand args[0] and returns the exit code: 0, 1 for a
// failure, 2 for a usage error or a missing file or folder (an error
// that wraps fs.ErrNotExist: in every command a path that is not there
// exits the same way), or what the command's ExitCode says.
// "--version" (or "version") prints the program's name and version.
func (p *Program) Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		p.Usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintf(stdout, "%s %s\n", p.Name, version.Get())
		return 0
	}
	c, ok := p.Commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: no command %q\n\n", p.Name, args[0])
		p.Usage(stderr)
		return 2
	}
	p.badFlags = false
	err := c.Run(args[1:], stdout, stderr)
	var code ExitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, args[0], err)
	if errors.Is(err, ErrUsage) || p.badFlags || errors.Is(err, fs.ErrNotExist) {
		return 2
	}
	return 1
}

// Usage prints the program's commands.
func (p *Program) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %s\n\nUsage: %s COMMAND [flags]   (%s COMMAND --help for its flags; %s --version)\n\nCommands:\n", p.Name, version.Get(), p.Intro, p.Name, p.Name, p.Name)
	var names []string
	for n := range p.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, p.Commands[n].Summary)
	}
}

// FlagSet returns a flag set for subcommand name whose usage prints
// "Usage: PROGRAM NAME SYNOPSIS", the command's summary and its flags.
func (p *Program) FlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(p.Name+" "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		p.badFlags = true // also on --help, which Main treats as success
		fmt.Fprintf(stderr, "Usage: %s %s %s\n\n%s\n\nFlags:\n", p.Name, name, synopsis, strings.TrimSpace(p.Commands[name].Summary))
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args into fs with flags allowed before, between and after
// the positional arguments ("ofsctl overlay on -c FILE"); after "--"
// everything is positional. The positional arguments are left in
// fs.Args(). A bad flag is an ErrUsage error; --help returns
// flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...) // fs.Parse stopped at "--" and ate it
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Leave pos in fs.Args(): a parse of "--" and pos takes no flags.
	return fs.Parse(append([]string{"--"}, pos...))
}

// ParseInOrder parses args into fs as the flag package does: flags stop
// at the first positional argument, which with what follows is left in
// fs.Args() (for commands that run another command: "maint ls -l").
// Errors are as Parse's.
func ParseInOrder(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUsage, err)
}
