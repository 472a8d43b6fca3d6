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

// EditExtlinux edits every "append" line of an extlinux.conf (keyword in
// any case, any indentation) and reports how many there are and how many
// it changed. Other lines are kept byte for byte.
func EditExtlinux(text string, add []string) (out string, appends, changed int) {
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		eol := l[len(body):]
		trimmed := strings.TrimLeft(body, " \t")
		indent := body[:len(body)-len(trimmed)]
		f := strings.Fields(trimmed)
		if len(f) == 0 || !strings.EqualFold(f[0], "append") {
			continue
		}
		appends++
		words, ok := EditWords(f[1:], add)
		if ok {
			lines[i] = indent + f[0] + " " + strings.Join(words, " ") + eol
			changed++
		}
	}
	return strings.Join(lines, ""), appends, changed
}
