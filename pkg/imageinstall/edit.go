// Package imageinstall puts ofsroot into a system that already exists:
// an image file, a block device, or a root folder that is mounted. It
// writes the initramfs for the board next to the kernel, adds the
// ofsroot words (overlayfs=yes ofs-size=20 by default) to the kernel
// command line where a bootloader reads it (extlinux.conf, cmdline.txt),
// keeps a copy of every file it replaces as FILE.ofsroot-old, and
// reports each change. Nothing else is written.
//
// The steps are planned first (the initramfs built, the edits made in
// memory) and applied only when the plan is complete, so a failure
// leaves the target as it was.
package imageinstall

import (
	"strings"
)

// BackupSuffix is added to the name of the copy kept of a replaced file.
const BackupSuffix = ".ofsroot-old"

// key is the part of a command-line word before "=", or the whole word.
func key(w string) string {
	if i := strings.IndexByte(w, '='); i >= 0 {
		return w[:i]
	}
	return w
}

// EditWords returns the command line words with add applied: a word
// whose key (the part before "=") add names is replaced by add's, in
// place; the other words of add are appended. It reports whether
// anything changed.
func EditWords(words, add []string) ([]string, bool) {
	out := append([]string(nil), words...)
	for _, a := range add {
		found := false
		for i, w := range out {
			if key(w) == key(a) {
				if !found {
					out[i] = a
					found = true
				} else {
					out[i] = "" // a second copy: dropped
				}
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	var clean []string
	for _, w := range out {
		if w != "" {
			clean = append(clean, w)
		}
	}
	return clean, strings.Join(clean, " ") != strings.Join(words, " ")
}

// EditCmdlineTxt edits a cmdline.txt (one line of words).
func EditCmdlineTxt(text string, add []string) (string, bool) {
	words, changed := EditWords(strings.Fields(text), add)
	if !changed {
		return text, false
	}
	return strings.Join(words, " ") + "\n", true
}

// ExtlinuxEdit is what EditExtlinux did.
type ExtlinuxEdit struct {
	Text    string   // the edited file
	Appends int      // append lines of entries that load an initramfs
	Changed int      // of those, how many it changed
	Skipped []string // labels left alone: they load no initramfs
}

// EditExtlinux edits the "append" lines of an extlinux.conf (keywords in
// any case, any indentation) of the entries that load an initramfs: the
// overlay words mean nothing to a kernel booted without ofsroot's
// initramfs (a rescue entry with no initrd line must not be told
// overlayfs=yes). An entry loads one when it has an "initrd" line or an
// initrd= word on its append line. An append line before the first label
// is the default of every entry without one of its own: it is edited when
// such an entry loads an initramfs. Other lines are kept byte for byte.
func EditExtlinux(text string, add []string) ExtlinuxEdit {
	lines := strings.SplitAfter(text, "\n")
	type entry struct {
		label   string
		appends []int // line numbers of its append lines
		initrd  bool
	}
	global := &entry{}
	entries := []*entry{}
	cur := global
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "label":
			cur = &entry{label: strings.Join(f[1:], " ")}
			entries = append(entries, cur)
		case "initrd":
			cur.initrd = true
		case "append":
			cur.appends = append(cur.appends, i)
			for _, w := range f[1:] {
				if strings.HasPrefix(w, "initrd=") {
					cur.initrd = true
				}
			}
		}
	}
	var edit []int
	var skipped []string
	globalLoads := global.initrd // an initrd= word on the default line
	for _, e := range entries {
		if len(e.appends) == 0 && globalLoads {
			e.initrd = true
		}
		switch {
		case !e.initrd:
			if len(e.appends) > 0 || len(global.appends) > 0 {
				skipped = append(skipped, e.label)
			}
		case len(e.appends) > 0:
			edit = append(edit, e.appends...)
		default:
			global.initrd = true // it boots with the default append line
		}
	}
	if global.initrd {
		edit = append(edit, global.appends...)
	}
	r := ExtlinuxEdit{Appends: len(edit), Skipped: skipped}
	for _, i := range edit {
		l := lines[i]
		body := strings.TrimRight(l, "\r\n")
		eol := l[len(body):]
		trimmed := strings.TrimLeft(body, " \t")
		indent := body[:len(body)-len(trimmed)]
		f := strings.Fields(trimmed)
		words, ok := EditWords(f[1:], add)
		if ok {
			lines[i] = indent + f[0] + " " + strings.Join(words, " ") + eol
			r.Changed++
		}
	}
	r.Text = strings.Join(lines, "")
	return r
}
