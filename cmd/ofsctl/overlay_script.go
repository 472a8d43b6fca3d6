package main

import (
	"bytes"
	"fmt"
	"os"
)

// What an unset overlayfs means depends on the boot script U-Boot runs,
// not on ofsctl: ofsroot's boot.scr (boot/boot.cmd) boots plain without
// it, a boot.scr made --protect-by-default and the boot script
// flash-kernel generates with the package's snippet
// (/usr/share/flash-kernel/ubootenv.d/ofsroot, dist/flash-kernel) boot
// protected. ofsctl overlay reads the installed script to say which.

// unsetMeaning is what the installed boot script makes of an unset
// overlayfs.
type unsetMeaning int

const (
	// unsetUnknown: no boot script found to tell.
	unsetUnknown unsetMeaning = iota
	// unsetPlain: the script passes overlayfs only when it is set.
	unsetPlain
	// unsetProtected: the script passes overlayfs=yes when it is unset.
	unsetProtected
	// noToggles: the script does not read overlayfs at all, so no value
	// reaches the kernel.
	noToggles
)

func (m unsetMeaning) String() string {
	switch m {
	case unsetPlain:
		return "unset: plain"
	case unsetProtected:
		return "unset: protected"
	case noToggles:
		return "no toggles"
	}
	return "unknown"
}

// bootPolicy is the installed boot script's meaning of an unset
// overlayfs and where that was read (a path, for the messages).
type bootPolicy struct {
	unset unsetMeaning
	from  string
}

// Where boot scripts are installed, in the order U-Boot's distro boot
// tries them (boot_prefixes "/ /boot/", boot_scripts "boot.scr.uimg
// boot.scr"), for a root holding /boot; flash-kernel writes
// /boot/boot.scr. Variables so that tests can point elsewhere.
var (
	bootScriptPaths = []string{"/boot/boot.scr.uimg", "/boot/boot.scr", "/boot/firmware/boot.scr"}
	// flash-kernel and the package's snippet in the places flash-kernel
	// reads (/etc first, as flash-kernel does).
	flashKernelPath = "/usr/sbin/flash-kernel"
	fkSnippetPaths  = []string{"/etc/flash-kernel/ubootenv.d/ofsroot", "/usr/share/flash-kernel/ubootenv.d/ofsroot"}
)

// The lines that read and default the toggle, in boot/boot.cmd and in
// dist/flash-kernel/ofsroot alike (a test checks both).
var (
	readsOverlay   = []byte(`ofs_overlay="${overlayfs}"`)
	defaultsToYes  = []byte(`if test -z "${ofs_overlay}"`)
	mentionOverlay = []byte(`${overlayfs}`)
)

// classifyScript reads a boot script, as text or as the mkimage image
// of one (uncompressed, as ofsroot bootfiles and flash-kernel make
// them: the text follows a 64-byte header), for its meaning of an unset
// overlayfs.
func classifyScript(script []byte) unsetMeaning {
	switch {
	case bytes.Contains(script, readsOverlay) && bytes.Contains(script, defaultsToYes):
		return unsetProtected
	case bytes.Contains(script, readsOverlay):
		return unsetPlain
	case bytes.Contains(script, mentionOverlay):
		// Some other script that reads the variable: it cannot be told.
		return unsetUnknown
	}
	return noToggles
}

// findBootPolicy reads the boot script at path (an error if it cannot),
// or, when path is "", the first of bootScriptPaths that reads; with none, flash-kernel
// with the package's snippet (which the next flash-kernel run puts in
// the script it generates) means protected; else unknown.
func findBootPolicy(path string) (bootPolicy, error) {
	paths := bootScriptPaths
	if path != "" {
		paths = []string{path}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && path == "" {
			// Searching: a script that cannot be read tells nothing, and
			// must not keep the toggles from being set.
			continue
		}
		if err != nil {
			return bootPolicy{}, fmt.Errorf("reading the boot script: %w", err)
		}
		return bootPolicy{classifyScript(b), p}, nil
	}
	if _, err := os.Stat(flashKernelPath); err == nil {
		for _, p := range fkSnippetPaths {
			if _, err := os.Stat(p); err == nil {
				return bootPolicy{unsetProtected, "flash-kernel's boot script with " + p}, nil
			}
		}
	}
	return bootPolicy{unsetUnknown, ""}, nil
}
