package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/grubenv"
)

// getter reads the toggles by their U-Boot names.
type getter interface {
	Get(name string) (string, bool)
}

// toggles is what overlay changes: the U-Boot environment, or GRUB's
// through grubToggles.
type toggles interface {
	getter
	Set(name, value string) error
	Delete(name string) error
}

// grubNames are the GRUB variables for the U-Boot ones (GRUB names have
// no '-'); /etc/grub.d/06_ofsroot (dist/grub) reads them.
var grubNames = map[string]string{overlayVar: "overlayfs", overlaySizeVar: "ofs_size", overlayOnceVar: "ofs_once", upperResetVar: "ofs_reset"}

// grubToggles is GRUB's environment block under the U-Boot names.
type grubToggles struct{ e *grubenv.Env }

func (g grubToggles) Get(name string) (string, bool) { return g.e.Get(grubNames[name]) }
func (g grubToggles) Set(name, value string) error   { return g.e.Set(grubNames[name], value) }
func (g grubToggles) Delete(name string) error       { g.e.Delete(grubNames[name]); return nil }

// grubNext reads GRUB's toggles for NextBoot: the package's snippet
// treats an unset overlayfs as yes.
type grubNext struct{ grubToggles }

func (g grubNext) Get(name string) (string, bool) {
	v, ok := g.grubToggles.Get(name)
	if !ok && name == overlayVar {
		return "yes", true
	}
	return v, ok
}

// overlayBootloader picks the environment to use: as asked, or uboot
// when fw_env.config exists, else grub when the grubenv's folder does.
func overlayBootloader(which, ubootConfig, grubPath string) (string, error) {
	switch which {
	case "uboot", "grub":
		return which, nil
	case "auto":
	default:
		return "", fmt.Errorf("%w: --bootloader %q: uboot, grub or auto", cli.ErrUsage, which)
	}
	if _, err := os.Stat(ubootConfig); err == nil {
		return "uboot", nil
	}
	if fi, err := os.Stat(filepath.Dir(grubPath)); err == nil && fi.IsDir() {
		return "grub", nil
	}
	return "", fmt.Errorf("no bootloader environment found: neither %s (U-Boot's fw_env.config) nor the folder of %s (GRUB); name one with -c or --grubenv", ubootConfig, grubPath)
}

// overlayGrub applies change (nil: none) to GRUB's environment block at
// path (a missing block is created as grub-editenv would), writes it
// back if it changed, and shows the toggles.
func overlayGrub(path string, change func(toggles) error, stdout io.Writer) error {
	e, err := grubenv.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		e = grubenv.New()
	} else if err != nil {
		return err
	}
	if change != nil {
		before, _ := e.Encode()
		if err := change(grubToggles{e}); err != nil {
			return err
		}
		after, err := e.Encode()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if string(before) != string(after) || os.IsNotExist(statErr(path)) {
			if err := grubenv.WriteFile(path, e); err != nil {
				return err
			}
		}
	}
	for _, n := range []string{overlayVar, overlaySizeVar, overlayOnceVar} {
		g := grubNames[n]
		if v, ok := e.Get(g); ok {
			fmt.Fprintf(stdout, "%s=%s (GRUB)\n", g, v)
		} else {
			fmt.Fprintf(stdout, "%s is not set (GRUB)\n", g)
		}
	}
	fmt.Fprintf(stdout, "next boot: %s\n", NextBoot(grubNext{grubToggles{e}}))
	return nil
}

func statErr(path string) error {
	_, err := os.Stat(path)
	return err
}
