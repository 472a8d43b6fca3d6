package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/grubenv"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

func init() {
	program.Commands["upper"] = cli.Command{
		Summary: "the writable layer: upper (show it) | upper reset (the next boot empties a persistent layer) | upper keep (cancel that)",
		Run:     runUpper,
	}
}

const upperUsage = `Usage: ofsctl upper [-c CONFIG] [-f DEFAULTS] [--bootloader auto|uboot|grub] [--grubenv FILE] [--status FILE] [reset | keep]

Alone, shows the writable layer this boot uses (from the init's status
record): a persistent layer on a partition (ofs-upper=DEVICE), with
whether it was new, reused, set aside (made on another lower) or reset,
or the RAM layer, with why a persistent one asked for was not used; and
whether a reset is armed for the next boot.

  reset   the next boot empties the persistent layer: sets ofs-reset in
          the U-Boot environment (ofs_reset in GRUB's), which the boot
          script turns into ofs-reset=1 once, clearing and saving it
          before that boot (as ofsctl overlay once). The emptied layer
          is gone for good; a layer set aside for another lower is not
          touched.
  keep    cancels a pending reset.

CONFIG, DEFAULTS, --bootloader and --grubenv are as for ofsctl overlay.
`

// upperResetVar is the U-Boot variable boot/boot.cmd reads (boot.VarReset;
// a test checks they agree); GRUB's is grubNames[upperResetVar].
const upperResetVar = "ofs-reset"

func runUpper(args []string, stdout, stderr io.Writer) error {
	f := newEnvFlags("upper", stderr)
	bootloader, grubPath := f.toggleFlags(upperUsage, stderr)
	statusPath := f.fs.String("status", bootstatus.Path, "the init's status record `FILE`")
	if err := f.parse(args); err != nil {
		return err
	}
	words := f.fs.Args()
	var change func(toggles) error
	switch {
	case len(words) == 0:
	case len(words) == 1 && words[0] == "reset":
		change = func(e toggles) error { return e.Set(upperResetVar, "1") }
	case len(words) == 1 && words[0] == "keep":
		change = func(e toggles) error { return e.Delete(upperResetVar) }
	default:
		fmt.Fprint(stderr, upperUsage)
		return fmt.Errorf("%w: upper %s", cli.ErrUsage, strings.Join(words, " "))
	}

	st, stErr := bootstatus.ReadFile(*statusPath)
	switch {
	case stErr != nil:
		fmt.Fprintf(stdout, "this boot: unknown (%v)\n", stErr)
	default:
		fmt.Fprintf(stdout, "this boot: %s\n", describeUpper(st.Upper))
	}
	if change != nil && words[0] == "reset" && (stErr != nil || st.Upper == nil || st.Upper.Asked == "" || st.Upper.Kind == bootstatus.UpperRAM && st.Upper.Fallback == "") {
		fmt.Fprintln(stderr, "ofsctl upper: note: this boot has no persistent layer (ofs-upper=DEVICE); the flag is cleared by the next boot all the same, and empties a layer only if that boot has one")
	}

	which, err := overlayBootloader(*bootloader, *f.config, *grubPath)
	if err != nil {
		return err
	}
	var armed bool
	if which == "grub" {
		if change != nil {
			if err := overlayGrub(*grubPath, change, io.Discard); err != nil {
				return err
			}
		}
		e, err := grubenv.ReadFile(*grubPath)
		if errors.Is(err, fs.ErrNotExist) {
			e = grubenv.New()
		} else if err != nil {
			return err
		}
		_, armed = grubToggles{e}.Get(upperResetVar)
		which = "GRUB"
	} else {
		if change != nil {
			if err := envUpdate(f, stderr, func(e *ubootenv.Env) error { return change(e) }); err != nil {
				return err
			}
		}
		s, err := f.open(stderr)
		if err != nil {
			return err
		}
		_, armed = s.Env().Get(upperResetVar)
		s.Close()
		which = "U-Boot"
	}
	if armed {
		fmt.Fprintf(stdout, "next boot: empties the persistent layer (%s is set, %s)\n", upperResetVar, which)
	} else {
		fmt.Fprintf(stdout, "next boot: keeps the persistent layer (%s is not set, %s)\n", upperResetVar, which)
	}
	return nil
}

// describeUpper says in words which writable layer a boot used.
func describeUpper(u *bootstatus.Upper) string {
	switch {
	case u == nil || u.Kind == bootstatus.UpperRAM && u.Fallback == "":
		return "a RAM layer (no ofs-upper=DEVICE): changes are lost at reboot"
	case u.Fallback != "":
		return "a RAM layer standing in (degraded): " + u.Fallback
	case u.Kind != bootstatus.UpperDevice:
		return "a " + u.Kind + " layer: changes are lost at reboot"
	}
	s := fmt.Sprintf("a persistent layer on %s (%s), folder %s, %s", u.Device, u.FSType, u.Dir, u.State)
	if u.SetAside != "" {
		s += fmt.Sprintf("; the one made on another lower was set aside as %s", u.SetAside)
	}
	return s
}
