package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cli"
	"github.com/ofsroot/ofsroot/pkg/grubenv"
	"github.com/ofsroot/ofsroot/pkg/maintenance"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
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

// grubRealRoot says where GRUB's block at path really is. On a protected
// root whose / holds path (no /boot of its own), GRUB reads the block
// from the real root, not from the RAM layer: a block written through /
// would be gone at the next boot, and the toggle with it. Then it returns
// the real root's mount point and the block's path under it; otherwise
// "" and path.
func grubRealRoot(path string) (mount, real string, err error) {
	r, err := rootstatus.Gather(statusSources)
	if err != nil {
		return "", "", fmt.Errorf("cannot tell whether the root is protected (where %s is to be written): %w", path, err)
	}
	if r.Mode != bootstatus.Protected || r.RealRoot == nil {
		return "", path, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	var root, dir unix.Stat_t
	if unix.Stat("/", &root) != nil || unix.Stat(filepath.Dir(abs), &dir) != nil || root.Dev != dir.Dev {
		return "", path, nil // on a filesystem of its own (or absent: the write says so)
	}
	return r.RealRoot.Mount, filepath.Join(r.RealRoot.Mount, abs), nil
}

// overlayGrub applies change (nil: none) to GRUB's environment block at
// path (a missing block is created as grub-editenv would), writes it
// back if it changed, and shows the toggles. On a protected root the
// block is the real root's (grubRealRoot), written with the real root
// writable for that moment only, in a private mount namespace.
func overlayGrub(path string, change func(toggles) error, stdout io.Writer) error {
	mount, path, err := grubRealRoot(path)
	if err != nil {
		return err
	}
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
			write := func() error { return grubenv.WriteFile(path, e) }
			if mount != "" {
				fmt.Fprintf(stdout, "the root is protected: writing the real root's %s\n", path)
				err = maintenance.Writable(mount, nil, write)
			} else {
				err = write()
			}
			if err != nil {
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
	// The package's snippet treats an unset overlayfs as yes.
	fmt.Fprintf(stdout, "next boot: %s\n", NextBoot(defaultYes{grubToggles{e}}))
	return nil
}

func statErr(path string) error {
	_, err := os.Stat(path)
	return err
}
