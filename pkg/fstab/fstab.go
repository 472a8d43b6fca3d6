// Package fstab reads /etc/fstab and writes the version the protected
// root boots with: the file lives in the RAM layer only, its header says
// where the real one is and how to make the real root writable and back,
// the "/" entry and swap entries are gone (the overlay is /, and swap on
// the device would write to it), an entry mounts the real root read-only
// at /mnt/root-RO, and every other line is kept as it was, comments
// included.
//
// Everything here is pure: it works on bytes.
package fstab

import (
	"bytes"
	"fmt"
	"strings"
)

// Entry is one mount line's fields. Freq and PassNo are kept as written
// ("" when absent).
type Entry struct {
	Spec, File, VfsType, MntOps, Freq, PassNo string
}

// Line is one line of the file: an entry, or text kept as it is
// (comment, blank, or malformed).
type Line struct {
	Raw   string
	Entry *Entry // nil for comments, blanks and malformed lines
	// Malformed says why a non-comment line could not be read.
	Malformed string
}

// Parse splits an fstab into lines. It never fails: a line it cannot read
// is kept with Malformed set.
func Parse(data []byte) []Line {
	var lines []Line
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" && len(data) == 0 {
		return nil
	}
	for _, raw := range strings.Split(text, "\n") {
		lines = append(lines, parseLine(strings.TrimSuffix(raw, "\r")))
	}
	return lines
}

func parseLine(raw string) Line {
	trimmed := strings.TrimSpace(raw)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return Line{Raw: raw}
	}
	f := strings.Fields(trimmed)
	switch {
	case len(f) < 2:
		return Line{Raw: raw, Malformed: "fewer than two fields (need at least device and mount point)"}
	case len(f) > 6:
		return Line{Raw: raw, Malformed: fmt.Sprintf("%d fields, at most 6 allowed", len(f))}
	}
	e := Entry{Spec: f[0], File: Unescape(f[1]), VfsType: "auto", MntOps: "defaults"}
	if len(f) > 2 {
		e.VfsType = f[2]
	}
	if len(f) > 3 {
		e.MntOps = f[3]
	}
	if len(f) > 4 {
		e.Freq = f[4]
	}
	if len(f) > 5 {
		e.PassNo = f[5]
	}
	return Line{Raw: raw, Entry: &e}
}

// Unescape decodes fstab's octal escapes (\040 for a space).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 || s[0] > '3' {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// Escape encodes space, tab, newline and backslash as octal escapes.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// IsRoot says whether e mounts "/".
func (e *Entry) IsRoot() bool { return e.File == "/" }

// IsSwap says whether e is a swap area.
func (e *Entry) IsSwap() bool { return e.VfsType == "swap" }

// RealRoot says how the read-only real root is to be listed.
type RealRoot struct {
	// Spec is the device as the user named it. Rewrite prefers the spec
	// of the original "/" entry when there is one.
	Spec    string
	VfsType string
	// Mount is where the real root is mounted (/mnt/root-RO).
	Mount string
	// Options are the options it is mounted with; "ro" is always put
	// first.
	Options string
}

// Rewrite returns the fstab for the protected root. original may be nil
// (the root had no fstab). The warnings name lines kept as they were
// because they could not be read.
func Rewrite(original []byte, root RealRoot) (out []byte, warnings []string) {
	lines := Parse(original)
	spec, vfsType, opts := root.Spec, root.VfsType, root.Options
	for _, l := range lines {
		if l.Entry != nil && l.Entry.IsRoot() {
			// The user's own name for the device (by-path, UUID=, ...)
			// is the one they recognise.
			if l.Entry.Spec != "" && !strings.EqualFold(l.Entry.Spec, "none") {
				spec = l.Entry.Spec
			}
			if vfsType == "" && l.Entry.VfsType != "auto" {
				vfsType = l.Entry.VfsType
			}
			if opts == "" {
				opts = l.Entry.MntOps
			}
		}
	}
	if vfsType == "" {
		vfsType = "auto"
	}
	mount := root.Mount
	if mount == "" {
		mount = "/mnt/root-RO"
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# This fstab is in RAM, the real one can be found at %s/etc/fstab\n", mount)
	b.WriteString("# The original entry for '/' and all swap entries have been removed. The new\n")
	b.WriteString("# entry for the read-only real root fs follows. Write access can be\n")
	b.WriteString("# enabled using:\n")
	fmt.Fprintf(&b, "#   sudo mount -o remount,rw %s\n", mount)
	b.WriteString("# re-mounting it read-only is done using:\n")
	fmt.Fprintf(&b, "#   sudo mount -o remount,ro %s\n", mount)
	b.WriteString("# (or use 'ofsctl' for maintenance). Changes to this file are lost at reboot.\n")
	b.WriteString("#\n")
	// Pass number 0: the real root is never checked at boot, since a
	// check may write to the device we promise not to write.
	fmt.Fprintf(&b, "%s %s %s %s 0 0\n", spec, Escape(mount), vfsType, readOnlyOptions(opts))
	if original == nil {
		b.WriteString("# the real root had no /etc/fstab.\n")
		return b.Bytes(), nil
	}
	fmt.Fprintf(&b, "# remaining entries from the original %s/etc/fstab follow.\n", mount)
	for i, l := range lines {
		switch {
		case l.Malformed != "":
			warnings = append(warnings, fmt.Sprintf("fstab line %d kept as it was: %s: %q", i+1, l.Malformed, l.Raw))
		case l.Entry == nil:
		case l.Entry.IsRoot():
			fmt.Fprintf(&b, "# (removed: overlay is /) %s\n", l.Raw)
			continue
		case l.Entry.IsSwap():
			fmt.Fprintf(&b, "# (removed: swap) %s\n", l.Raw)
			continue
		case l.Entry.File == mount:
			fmt.Fprintf(&b, "# (replaced above) %s\n", l.Raw)
			continue
		}
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.Bytes(), warnings
}

// readOnlyOptions puts "ro" first and drops rw, ro and defaults.
func readOnlyOptions(opts string) string {
	out := []string{"ro"}
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "", "ro", "rw", "defaults":
			continue
		}
		out = append(out, o)
	}
	return strings.Join(out, ",")
}

// ForceRootReadOnly returns data with the options of every "/" entry
// made read-only ("ro" first, rw dropped), and whether anything changed.
// It is for a degraded boot, where the real root's own fstab is used: the
// real init must not remount the root read-write because of it.
func ForceRootReadOnly(data []byte) ([]byte, bool) {
	var b bytes.Buffer
	changed := false
	for _, l := range Parse(data) {
		if l.Entry != nil && l.Entry.IsRoot() {
			e := *l.Entry
			ro := readOnlyOptions(e.MntOps)
			if ro != e.MntOps {
				changed = true
				fields := []string{e.Spec, Escape(e.File), e.VfsType, ro}
				if e.Freq != "" {
					fields = append(fields, e.Freq)
				}
				if e.PassNo != "" {
					// A read-only root is not checked at boot: a check
					// can write.
					fields = append(fields, "0")
				}
				fmt.Fprintf(&b, "# ofsroot: degraded boot, root forced read-only; was: %s\n", l.Raw)
				b.WriteString(strings.Join(fields, " "))
				b.WriteByte('\n')
				continue
			}
		}
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.Bytes(), changed
}
