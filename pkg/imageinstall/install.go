package imageinstall

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
	"github.com/ofsroot/ofsroot/pkg/atomicfile"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

// Options say what to install where.
type Options struct {
	Board board.Board
	// Kernel is a linux-image .deb or an unpacked one to build the
	// initramfs from; its version must be the target's. Empty: the
	// kernel installed in the target's root (its lib/modules/VERSION).
	Kernel string
	// Initramfs is a prebuilt initramfs to install instead of building
	// one (InitBinary is passed on to the builder otherwise).
	Initramfs  string
	InitBinary string
	// Target is an image file, a block device, or a mounted root folder.
	Target string
	// Cmdline are the words for the kernel command line; nil means
	// diskimage.DefaultCmdline.
	Cmdline []string
	// SourceDateEpoch stamps the initramfs (0: the builder's default).
	SourceDateEpoch int64
	// Log, if set, is told about each step.
	Log func(format string, args ...any)
}

// Change is one file written.
type Change struct {
	// Name is the file's path relative to the boot folder.
	Name   string
	Path   string // as seen from the target: /boot/initrd.img-6.1.0-50-amd64, or (boot partition)/cmdline.txt
	Action string // "added", "replaced", "edited"
	Backup string // the copy kept of the old file, "" if none was made
	Note   string
}

func (c Change) String() string {
	s := fmt.Sprintf("%-8s %s", c.Action, c.Path)
	if c.Note != "" {
		s += ": " + c.Note
	}
	if c.Backup != "" {
		s += " (the old one is kept as " + filepath.Base(c.Backup) + ")"
	}
	return s
}

// Result reports an install.
type Result struct {
	KernelVersion string
	// Root and Boot say where the root and the boot files were found.
	Root, Boot string
	Changes    []Change
	// Advice are things the user has to do (a bootloader that was not
	// edited).
	Advice []string
}

// plan is what will be written, prepared in full before any write.
type plan struct {
	writes []write
	advice []string
}

type write struct {
	dir, name string // dir is a host folder, name relative to it
	shown     string // path for the report
	data      []byte
	from      string // or: copy this file
	action    string
	note      string
}

// Places are the folders an install writes into: the root's, and the one
// holding the kernel for the bootloader, each with a label for the report.
type Places struct {
	Root      string // host folder of the target's root
	Boot      string // host folder holding the kernel the bootloader loads
	BootShown string // how the report names Boot: "/boot" or "(boot partition)"
}

// Into installs into already-mounted places. The places must be
// writable; nothing is written until everything is prepared.
//
// Side effects: builds the initramfs in a temporary file; writes files
// under p.Boot (see Result.Changes).
func Into(p Places, o Options) (*Result, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	words := o.Cmdline
	if words == nil {
		words = diskimage.DefaultCmdline
	}
	version, err := kernelVersion(p, o)
	if err != nil {
		return nil, err
	}
	initrdName, err := initrdFor(p.Boot, version)
	if err != nil {
		return nil, err
	}
	res := &Result{KernelVersion: version, Root: p.Root, Boot: p.Boot}

	tmp, err := os.MkdirTemp("", "ofsroot-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	initrd := o.Initramfs
	if initrd == "" {
		kernel := o.Kernel
		if kernel == "" {
			kernel = modulesRoot(p.Root)
		}
		initrd = filepath.Join(tmp, "initrd.img")
		logf("building the initramfs for %s from the kernel %s in %s", o.Board.Name, version, kernel)
		if _, err := initramfs.Build(initramfs.Options{Board: o.Board, Kernel: kernel, Output: initrd,
			InitBinary: o.InitBinary, SourceDateEpoch: o.SourceDateEpoch, Log: o.Log}); err != nil {
			return nil, fmt.Errorf("building the initramfs: %w", err)
		}
	}

	var pl plan
	action := "added"
	if _, err := os.Lstat(filepath.Join(p.Boot, initrdName)); err == nil {
		action = "replaced"
	}
	pl.writes = append(pl.writes, write{dir: p.Boot, name: initrdName, shown: p.BootShown + "/" + initrdName,
		from: initrd, action: action, note: "ofsroot initramfs for " + o.Board.Name + ", kernel " + version})

	edited := false
	for _, name := range []string{"extlinux/extlinux.conf", "extlinux.conf", "boot/extlinux/extlinux.conf"} {
		old, err := os.ReadFile(filepath.Join(p.Boot, name))
		if err != nil {
			continue
		}
		ed := EditExtlinux(string(old), words)
		for _, l := range ed.Skipped {
			pl.advice = append(pl.advice, fmt.Sprintf("%s/%s: entry %q loads no initramfs, so the overlay words would do nothing there: left as it is", p.BootShown, name, l))
		}
		switch {
		case ed.Appends == 0:
			pl.advice = append(pl.advice, fmt.Sprintf("%s/%s has no append line for an entry that loads an initramfs: add one with %s", p.BootShown, name, strings.Join(words, " ")))
		case ed.Changed > 0:
			pl.writes = append(pl.writes, write{dir: p.Boot, name: name, shown: p.BootShown + "/" + name, data: []byte(ed.Text),
				action: "edited", note: fmt.Sprintf("%d append line(s) now have %s", ed.Changed, strings.Join(words, " "))})
		}
		edited = true
	}
	if old, err := os.ReadFile(filepath.Join(p.Boot, "cmdline.txt")); err == nil {
		if text, changed := EditCmdlineTxt(string(old), words); changed {
			pl.writes = append(pl.writes, write{dir: p.Boot, name: "cmdline.txt", shown: p.BootShown + "/cmdline.txt", data: []byte(text),
				action: "edited", note: "now has " + strings.Join(words, " ")})
		}
		edited = true
	}
	for _, scr := range []string{"boot.scr", "boot.cmd"} {
		if _, err := os.Stat(filepath.Join(p.Boot, scr)); err == nil {
			pl.advice = append(pl.advice, fmt.Sprintf("%s/%s (a U-Boot script) is not edited: make its bootargs carry %s, or in U-Boot: setenv bootargs \"${bootargs} %s\"; saveenv",
				p.BootShown, scr, strings.Join(words, " "), strings.Join(words, " ")))
			edited = true
		}
	}
	if !edited {
		pl.advice = append(pl.advice, fmt.Sprintf("no extlinux.conf or cmdline.txt found next to the kernel: add %s to the kernel command line your bootloader passes (and make it load %s/%s)",
			strings.Join(words, " "), p.BootShown, initrdName))
	}

	for _, w := range pl.writes {
		c, err := apply(w)
		if err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, c)
	}
	res.Advice = pl.advice
	return res, nil
}

// kernelVersion is the version of o.Kernel (which the target must have
// modules for), or the one kernel whose modules the target has.
func kernelVersion(p Places, o Options) (string, error) {
	installed := moduleVersions(p.Root)
	if o.Kernel == "" {
		switch len(installed) {
		case 0:
			return "", fmt.Errorf("the target's root %s has no lib/modules/VERSION: give --kernel, the linux-image package installed in it", p.Root)
		case 1:
			return installed[0], nil
		}
		return "", fmt.Errorf("the target's root has modules of several kernels (%s): give --kernel, the one its bootloader starts", strings.Join(installed, ", "))
	}
	k, cleanup, err := kernelpkg.OpenKernel(o.Kernel, nil)
	if err != nil {
		return "", err
	}
	cleanup()
	for _, v := range installed {
		if v == k.Version {
			return v, nil
		}
	}
	if len(installed) == 0 {
		// A root without modules (a static one): accept the kernel.
		return k.Version, nil
	}
	return "", fmt.Errorf("kernel %s (from %s) is not the target's: its root has modules for %s only; the init would find no modules after the switch. Give the target's own kernel package, or leave --kernel out",
		k.Version, o.Kernel, strings.Join(installed, ", "))
}

// modulesRoot is the folder to hand the initramfs builder for a root:
// the root itself, or its usr/ when lib is a link to usr/lib (a merged
// /usr, as Debian 12 has), where the builder would otherwise find every
// module tree twice.
func modulesRoot(root string) string {
	lib, err1 := os.Stat(filepath.Join(root, "lib"))
	usrLib, err2 := os.Stat(filepath.Join(root, "usr/lib"))
	if err1 == nil && err2 == nil && os.SameFile(lib, usrLib) {
		return filepath.Join(root, "usr")
	}
	return root
}

func moduleVersions(root string) []string {
	seen := map[string]bool{}
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			if e.IsDir() {
				seen[e.Name()] = true
			}
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// initrdFor names the initramfs next to the kernel: initrd.img-VERSION
// beside vmlinuz-VERSION (Debian's names, which its bootloader
// configurations already load), else initrd.img beside vmlinuz, zImage
// or Image.
func initrdFor(boot, version string) (string, error) {
	if _, err := os.Stat(filepath.Join(boot, "vmlinuz-"+version)); err == nil {
		return "initrd.img-" + version, nil
	}
	for _, k := range []string{"vmlinuz", "zImage", "Image"} {
		if _, err := os.Stat(filepath.Join(boot, k)); err == nil {
			return "initrd.img", nil
		}
	}
	entries, _ := os.ReadDir(boot)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return "", fmt.Errorf("no kernel for %s in %s (looked for vmlinuz-%s, vmlinuz, zImage, Image; found: %s)",
		version, boot, version, strings.Join(names, " "))
}

// apply writes one file: the old one is copied to NAME.ofsroot-old
// first (an existing backup is left alone: it holds the original), the
// new one is written beside it and renamed over it, each through
// atomicfile (so a power cut leaves no torn backup taken for the
// original) with the old file's mode.
func apply(w write) (Change, error) {
	path := filepath.Join(w.dir, w.name)
	c := Change{Name: w.name, Path: w.shown, Action: w.action, Note: w.note}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
		backup := path + BackupSuffix
		if _, err := os.Lstat(backup); errors.Is(err, os.ErrNotExist) {
			if err := atomicfile.Write(backup, mode, copyFrom(path)); err != nil {
				return c, fmt.Errorf("keeping a copy of %s: %w; nothing of it was changed", w.shown, err)
			}
			c.Backup = backup
		} else {
			c.Note += "; the copy from before the first install is kept"
		}
	}
	fill := copyFrom(w.from)
	if w.from == "" {
		fill = func(out io.Writer) error {
			_, err := out.Write(w.data)
			return err
		}
	}
	if err := atomicfile.Write(path, mode, fill); err != nil {
		return c, fmt.Errorf("writing %s: %w", w.shown, err)
	}
	return c, nil
}

// copyFrom is an atomicfile fill that copies the file src.
func copyFrom(src string) func(io.Writer) error {
	return func(out io.Writer) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(out, in)
		return err
	}
}
