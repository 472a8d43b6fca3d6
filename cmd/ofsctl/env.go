package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/grubenv"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

func init() {
	program.Commands["env"] = cli.Command{
		Summary: "U-Boot environment variables, as fw_printenv and fw_setenv: env print [NAME...], env set NAME [VALUE]",
		Run:     runEnv,
	}
}

// envLockPath is the lock shared with fw_printenv and fw_setenv; tests
// clear it.
var envLockPath = ubootenv.DefaultLockPath

const envUsage = `Usage: ofsctl env print [-c CONFIG] [-f DEFAULTS] [-n] [NAME...]
       ofsctl env set [-c CONFIG] [-f DEFAULTS] NAME [VALUE...]

print shows every variable, or the NAMEs given, as NAME=VALUE (-n: the
value alone); a NAME that is not set is an error (exit 1), as U-Boot's
printenv says. set sets NAME to VALUE (several VALUE words are joined
with spaces, as U-Boot's setenv does) or, without a VALUE, deletes it. It
writes only when something changes; with a redundant environment, to the
copy U-Boot is not using.

CONFIG is fw_env.config (default /etc/fw_env.config). When no copy of the
environment is valid, DEFAULTS (default /etc/u-boot-initial-env) stands
in, as with fw_setenv; without it set refuses to write, since an
environment holding only one variable would replace U-Boot's built-in
one, bootcmd included.
`

// envFlags are the options env print and env set share.
type envFlags struct {
	fs       *flag.FlagSet
	config   *string
	defaults *string
}

func newEnvFlags(name string, stderr io.Writer) envFlags {
	fs := flag.NewFlagSet("ofsctl env "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, envUsage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return envFlags{
		fs:       fs,
		config:   fs.String("c", ubootenv.DefaultConfigPath, "fw_env.config `CONFIG` saying where the environment lives"),
		defaults: fs.String("f", ubootenv.DefaultEnvPath, "file of `DEFAULTS` (name=value lines) used when no copy is valid"),
	}
}

// toggleFlags gives the command its usage text and the flags that choose
// the bootloader's environment, for the commands that set boot toggles
// (ofsctl overlay, ofsctl upper).
func (f envFlags) toggleFlags(usage string, stderr io.Writer) (bootloader, grubPath *string) {
	f.fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nFlags:")
		f.fs.PrintDefaults()
	}
	bootloader = f.fs.String("bootloader", "auto", "`WHICH` environment to use: uboot, grub, or auto (uboot when CONFIG exists, else grub when GRUBENV's folder does)")
	grubPath = f.fs.String("grubenv", grubenv.DefaultPath, "GRUB's environment block `GRUBENV`")
	return bootloader, grubPath
}

// parse reads the flags; a usage error is marked for exit code 2.
func (f envFlags) parse(args []string) error {
	return cli.Parse(f.fs, args)
}

// open reads the configuration and opens the environment.
func (f envFlags) open(stderr io.Writer) (*ubootenv.Store, error) {
	cfg, err := ubootenv.ReadConfig(*f.config)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s, which says where U-Boot keeps its environment (lines of DEVICE OFFSET SIZE [SECTOR]).\n"+
			"Write one: `ofsroot bootfiles --board BOARD --fw-env-config FILE` makes it for a known board (the Nitrogen6's is\n"+
			"`/dev/mtd0 0xC0000 0x2000 0x1000`), or give another with -c FILE", cli.ErrUsage, *f.config)
	}
	if err != nil {
		return nil, err
	}
	s, err := ubootenv.Open(cfg, ubootenv.Options{DefaultEnv: *f.defaults, LockPath: envLockPath})
	if err != nil {
		return nil, err
	}
	if !s.Valid() {
		fmt.Fprintf(stderr, "ofsctl env: no valid environment in %s; using the %s\n", *f.config, s.Source())
	}
	return s, nil
}

func runEnv(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, envUsage)
		return fmt.Errorf("%w: env needs print or set", cli.ErrUsage)
	}
	switch args[0] {
	case "print", "printenv":
		return runEnvPrint(args[1:], stdout, stderr)
	case "set", "setenv":
		return runEnvSet(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, envUsage)
		return nil
	}
	return fmt.Errorf("%w: env %s: want print or set", cli.ErrUsage, args[0])
}

func runEnvPrint(args []string, stdout, stderr io.Writer) error {
	f := newEnvFlags("print", stderr)
	valueOnly := f.fs.Bool("n", false, "print the values alone, without NAME=")
	if err := f.parse(args); err != nil {
		return err
	}
	if *valueOnly && f.fs.NArg() == 0 {
		return fmt.Errorf("%w: -n needs a NAME", cli.ErrUsage)
	}
	s, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	e := s.Env()
	names := f.fs.Args()
	if len(names) == 0 {
		names = e.Names()
	}
	missing := 0
	for _, n := range names {
		v, ok := e.Get(n)
		switch {
		case !ok:
			fmt.Fprintf(stderr, "## Error: %q not defined\n", n)
			missing++
		case *valueOnly:
			fmt.Fprintln(stdout, v)
		default:
			fmt.Fprintf(stdout, "%s=%s\n", n, v)
		}
	}
	if missing > 0 {
		return cli.ExitCode(1)
	}
	return nil
}

func runEnvSet(args []string, stdout, stderr io.Writer) error {
	f := newEnvFlags("set", stderr)
	if err := f.parse(args); err != nil {
		return err
	}
	if f.fs.NArg() == 0 {
		return fmt.Errorf("%w: env set needs a NAME", cli.ErrUsage)
	}
	name := f.fs.Arg(0)
	if err := ubootenv.CheckName(name); err != nil {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	var value *string
	if f.fs.NArg() > 1 {
		v := strings.Join(f.fs.Args()[1:], " ")
		value = &v
	}
	return envUpdate(f, stderr, func(e *ubootenv.Env) error {
		if value == nil {
			return e.Delete(name)
		}
		return e.Set(name, *value)
	})
}

// envUpdate opens the environment, lets change edit it, and saves it if
// anything changed (or if it came from the defaults, as fw_setenv does,
// so that the environment becomes valid).
func envUpdate(f envFlags, stderr io.Writer, change func(*ubootenv.Env) error) error {
	s, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	before := s.Env()
	after := before.Clone()
	if err := change(after); err != nil {
		return err
	}
	if s.Valid() && after.Equal(before) {
		return nil
	}
	return s.Save(after)
}
