// Package boot makes the U-Boot boot script of a board: boot.cmd in this
// folder, rendered with the board's console, device tree and load
// addresses, and wrapped as boot.scr (a U-Boot legacy SCRIPT image).
//
// The script turns the U-Boot environment into kernel command-line
// words: overlayfs and ofs-size as they are (nothing when unset, so the
// board boots plainly; with Options.ProtectByDefault an unset overlayfs
// is overlayfs=yes instead), and ofs-once, a one-shot maintenance boot: the
// script deletes the flag and saves the environment, then boots once
// with overlayfs=no; the next boot is protected again without a second
// command. extbootargs adds more words.
package boot

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/uimage"
)

//go:embed boot.cmd
var scriptSource string

var scriptTemplate = template.Must(template.New("boot.cmd").Parse(scriptSource))

// Variables are the U-Boot environment variables the script reads.
const (
	VarOverlay = "overlayfs"
	VarSize    = "ofs-size"
	VarOnce    = "ofs-once"
	VarReset   = "ofs-reset"
	VarExtra   = "extbootargs"
)

// Files are the names the script loads from its own partition.
const (
	KernelFile  = "zImage"
	InitrdFile  = "uInitrd"
	ScriptFile  = "boot.scr"
	CommandFile = "boot.cmd"
)

// Options tune the script.
type Options struct {
	// Root is the root= value; empty means the partition the script
	// was loaded from, named by its PARTUUID (U-Boot's `part uuid`).
	Root string
	// Append are more kernel command-line words, always added.
	Append []string
	// ProtectByDefault makes an unset overlayfs mean yes: the board is
	// protected unless the environment says overlayfs=no. For field
	// devices whose environment is a single copy (the Nitrogen6's): a
	// power cut while it is saved leaves a bad CRC, U-Boot then uses its
	// built-in environment, which has no overlayfs, and without this the
	// next boot would be plain, writable.
	ProtectByDefault bool
}

// Source returns the template (boot/boot.cmd) as it is.
func Source() string { return scriptSource }

// Script renders the boot script's commands for board b.
func Script(b board.Board, o Options) (string, error) {
	if b.UBoot == nil {
		return "", fmt.Errorf("board %s does not boot with U-Boot (no uboot section)", b.Name)
	}
	if b.DeviceTree == "" {
		return "", fmt.Errorf("board %s has no device tree", b.Name)
	}
	if err := checkWord("root", o.Root); err != nil {
		return "", err
	}
	for _, w := range o.Append {
		if w == "" {
			return "", errors.New("an empty kernel command-line word")
		}
		if err := checkWord("word", w); err != nil {
			return "", err
		}
	}
	u := b.UBoot
	var sb strings.Builder
	err := scriptTemplate.Execute(&sb, map[string]any{
		"Board":            b.Name,
		"Console":          b.Console,
		"DTB":              b.DeviceTree,
		"KernelAddr":       u.KernelAddr.String(),
		"RamdiskAddr":      u.RamdiskAddr.String(),
		"FDTAddr":          u.FDTAddr.String(),
		"Root":             o.Root,
		"Append":           o.Append,
		"ProtectByDefault": o.ProtectByDefault,
	})
	return sb.String(), err
}

// checkWord refuses what would break out of the script's quoted
// setenv: blanks, quotes, $, ;, backslashes and control characters.
func checkWord(what, w string) error {
	for _, r := range w {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("\"'$;\\`", r) {
			return fmt.Errorf("%s %q: it may not contain blanks, quotes, $, ;, \\ or control characters", what, w)
		}
	}
	return nil
}

// Scr wraps script as boot.scr: a SCRIPT image for the board's
// architecture, named and stamped with t, byte for byte what `mkimage -A
// ARCH -O linux -T script -C none -a 0 -e 0 -n NAME -d boot.cmd boot.scr`
// makes with SOURCE_DATE_EPOCH=t.
func Scr(b board.Board, script string, t time.Time) ([]byte, error) {
	arch, err := uimage.ArchForGOARCH(b.GOARCH)
	if err != nil {
		return nil, err
	}
	return uimage.Script(arch, ScriptName(b), t, []byte(script))
}

// ScriptName is the image name boot.scr carries.
func ScriptName(b board.Board) string { return "ofsroot " + b.Name }
