package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

func init() {
	program.Commands["overlay"] = cli.Command{
		Summary: "the next boots' mode, in the U-Boot environment or GRUB's: overlay on|off|size N|once (one maintenance boot); alone: show it",
		Run:     runOverlay,
	}
}

const overlayUsage = `Usage: ofsctl overlay [-c CONFIG] [-f DEFAULTS] [--bootloader auto|uboot|grub] [--grubenv FILE] [--boot-script FILE] [on | off | size N | once]

Sets the U-Boot variables ofsroot's boot script (boot.scr from ofsroot
bootfiles) turns into kernel command-line words:

  on       overlayfs=yes: every boot protects the root with a RAM overlay
  off      overlayfs=no: every boot is plain
  size N   ofs-size=N: the RAM layer's size, a percentage of RAM (20), N%,
           or bytes with K, M or G, as the init reads ofs-size=
  once     ofs-once=1: the next boot only is a maintenance boot with the
           overlay off (the boot script clears the flag and saves the
           environment before it boots), the boot after is protected again

on and off also cancel a pending once. Without a word it shows what the
environment says and what the next boot will do. CONFIG and DEFAULTS are
as for ofsctl env (default /etc/fw_env.config, /etc/u-boot-initial-env).

What an unset overlayfs means is the boot script's choice: ofsroot's
boot.scr boots plain, one made --protect-by-default and the one
flash-kernel generates with the package's snippet
(/usr/share/flash-kernel/ubootenv.d/ofsroot) boot protected. ofsctl reads
the installed script (--boot-script, default /boot/boot.scr.uimg,
/boot/boot.scr or /boot/firmware/boot.scr; with none, flash-kernel and
the snippet installed mean protected) and says which; when nothing tells,
it says so. A script that does not read overlayfs at all (flash-kernel's
without the snippet) boots plain whatever the environment says.

On a GRUB machine (no fw_env.config, a /boot/grub folder; or
--bootloader grub) the same words set overlayfs, ofs_size and ofs_once in
GRUB's environment block (--grubenv, default /boot/grub/grubenv), which
the ofsroot package's /etc/grub.d/06_ofsroot reads at boot. There an
unset overlayfs means protected (the package's default).
`

// The U-Boot variables boot/boot.cmd reads (boot.VarOverlay and the
// others; a test checks they agree). They are spelled out here so that
// the on-device tool does not link the script renderer.
const (
	overlayVar     = "overlayfs"
	overlaySizeVar = "ofs-size"
	overlayOnceVar = "ofs-once"
)

func runOverlay(args []string, stdout, stderr io.Writer) error {
	f := newEnvFlags("overlay", stderr)
	bootloader, grubPath := f.toggleFlags(overlayUsage, stderr)
	script := f.fs.String("boot-script", "", "the U-Boot boot script `FILE` the board runs, read to tell what an unset overlayfs means (default: the first of "+strings.Join(bootScriptPaths, ", ")+")")
	if err := f.parse(args); err != nil {
		return err
	}
	words := f.fs.Args()
	var change func(toggles) error
	switch {
	case len(words) == 0:
		which, err := overlayBootloader(*bootloader, *f.config, *grubPath)
		if err != nil {
			return err
		}
		if which == "grub" {
			return overlayGrub(*grubPath, nil, stdout)
		}
		s, err := f.open(stderr)
		if err != nil {
			return err
		}
		defer s.Close()
		p, err := findBootPolicy(*script)
		if err != nil {
			return err
		}
		overlayShow(stdout, s.Env(), p)
		return nil
	case words[0] == "on" && len(words) == 1:
		change = func(e toggles) error {
			if err := e.Delete(overlayOnceVar); err != nil {
				return err
			}
			return e.Set(overlayVar, "yes")
		}
	case words[0] == "off" && len(words) == 1:
		change = func(e toggles) error {
			if err := e.Delete(overlayOnceVar); err != nil {
				return err
			}
			return e.Set(overlayVar, "no")
		}
	case words[0] == "size" && len(words) == 2:
		n := strings.TrimSpace(words[1])
		if _, err := cmdline.ParseSize(n); err != nil {
			return fmt.Errorf("%w: size %q: %v", cli.ErrUsage, words[1], err)
		}
		change = func(e toggles) error { return e.Set(overlaySizeVar, n) }
	case words[0] == "once" && len(words) == 1:
		change = func(e toggles) error { return e.Set(overlayOnceVar, "1") }
	default:
		fmt.Fprint(stderr, overlayUsage)
		return fmt.Errorf("%w: overlay %s", cli.ErrUsage, strings.Join(words, " "))
	}
	which, err := overlayBootloader(*bootloader, *f.config, *grubPath)
	if err != nil {
		return err
	}
	if which == "grub" {
		return overlayGrub(*grubPath, change, stdout)
	}
	p, err := findBootPolicy(*script)
	if err != nil {
		return err
	}
	s, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	e := s.Env()
	if err := change(e); err != nil {
		return err
	}
	if !s.Valid() || !e.Equal(s.Env()) {
		if err := s.Save(e); err != nil {
			return err
		}
	}
	overlayShow(stdout, e, p)
	return nil
}

// overlayShow prints the three variables and what the next boot does
// under the boot script p describes.
func overlayShow(w io.Writer, e *ubootenv.Env, p bootPolicy) {
	for _, n := range []string{overlayVar, overlaySizeVar, overlayOnceVar} {
		if v, ok := e.Get(n); ok {
			fmt.Fprintf(w, "%s=%s\n", n, v)
		} else {
			fmt.Fprintf(w, "%s is not set\n", n)
		}
	}
	fmt.Fprintf(w, "next boot: %s\n", nextBoot(e, p))
}

// NextBoot says in words what the next boot does with e, reading the
// values the way the init does, under ofsroot's own boot.scr (an unset
// overlayfs: a plain boot).
func NextBoot(e getter) string { return nextBoot(e, bootPolicy{unset: unsetPlain}) }

// nextBoot is NextBoot under the boot script p describes.
func nextBoot(e getter, p bootPolicy) string {
	if p.unset == noToggles {
		return fmt.Sprintf("plain: the boot script %s does not read overlayfs, so no toggle reaches the kernel (regenerate it: flash-kernel with the ofsroot package installed, or ofsroot bootfiles)", p.from)
	}
	note := ""
	if _, set := e.Get(overlayVar); !set {
		switch p.unset {
		case unsetProtected:
			e = defaultYes{e}
			note = " (overlayfs is not set, which " + p.from + " boots as yes)"
		case unsetUnknown:
			return "plain or protected, as the boot script decides: overlayfs is not set, which ofsroot's boot.scr boots plain and a protect-by-default script " +
				"(flash-kernel's with ofsroot's snippet, or a boot.scr made --protect-by-default) boots protected; no boot script was found (" +
				strings.Join(bootScriptPaths, ", ") + ") to tell which: name it with --boot-script, or set overlayfs (ofsctl overlay on|off)"
		}
	}
	return nextBootMode(e, p) + note
}

// defaultYes reads an unset overlayfs as yes.
type defaultYes struct{ getter }

func (d defaultYes) Get(name string) (string, bool) {
	v, ok := d.getter.Get(name)
	if !ok && name == overlayVar {
		return "yes", true
	}
	return v, ok
}

// nextBootMode is nextBoot's reading of the values.
func nextBootMode(e getter, p bootPolicy) string {
	size := "50% of RAM (the default)"
	if v, ok := e.Get(overlaySizeVar); ok {
		if _, err := cmdline.ParseSize(v); err != nil {
			size = fmt.Sprintf("50%% of RAM (ofs-size=%s is not a size: %v)", v, err)
		} else if strings.HasSuffix(v, "%") || !strings.ContainsAny(v, "kKmMgG") {
			size = strings.TrimSuffix(v, "%") + "% of RAM"
		} else {
			size = v
		}
	}
	// The word as the init reads it: pkg/cmdline is the one reading.
	v, set := e.Get(overlayVar)
	var cfg cmdline.Config
	if set {
		cfg, _ = cmdline.Parse(strconv.Quote(overlayVar + "=" + v))
	}
	protected := set && cfg.Overlay.Protected()
	var mode string
	switch {
	case !set && p.from != "":
		mode = "plain (overlayfs is not set, which " + p.from + " boots plain)"
	case !set:
		mode = "plain (overlayfs is not set)"
	case cfg.OverlayUnknown:
		// The init fails closed on a word it does not know.
		mode = fmt.Sprintf("protected, a RAM layer of %s (overlayfs=%s is not a protection word: the init fails closed)", size, v)
	case cfg.Overlay == cmdline.OverlaySandbox:
		mode = "sandbox: the root's init runs in the firmware sandbox over a RAM layer of " + size
	case protected:
		mode = "protected, a RAM layer of " + size
	default:
		mode = "plain (overlayfs=" + v + ")"
	}
	if _, once := e.Get(overlayOnceVar); once {
		if protected {
			return "maintenance, the overlay off this once; then " + mode
		}
		return mode + "; ofs-once is set but changes nothing while the overlay is off"
	}
	return mode
}
