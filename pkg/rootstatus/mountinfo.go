package rootstatus

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID, Parent   int
	MajorMinor   string
	Root         string // the folder of the filesystem that is mounted
	Point        string // where
	Options      string // per-mount options ("ro,relatime")
	FSType       string
	Source       string
	SuperOptions string // the filesystem's options ("rw,lowerdir=...")
}

// ReadOnly says whether this mount is read-only (the per-mount flag,
// which is what stops writes through it).
func (m Mount) ReadOnly() bool { return hasOption(m.Options, "ro") }

// SuperReadOnly says whether the filesystem itself is read-only.
func (m Mount) SuperReadOnly() bool { return hasOption(m.SuperOptions, "ro") }

// Option returns the value of key=value in the super options.
func (m Mount) Option(key string) (string, bool) {
	for _, o := range splitOptions(m.SuperOptions) {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func hasOption(list, o string) bool {
	for _, x := range splitOptions(list) {
		if x == o {
			return true
		}
	}
	return false
}

// splitOptions splits on commas not escaped with a backslash (overlayfs
// escapes commas in layer paths).
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// ParseMountinfo reads mountinfo lines (proc(5)).
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseLine(line string) (Mount, error) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, fmt.Errorf("no \" - \" separator: %q", line)
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 6 || len(b) < 2 {
		return Mount{}, fmt.Errorf("too few fields: %q", line)
	}
	id, err1 := strconv.Atoi(a[0])
	parent, err2 := strconv.Atoi(a[1])
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("bad mount ids: %q", line)
	}
	m := Mount{ID: id, Parent: parent, MajorMinor: a[2], Root: unescape(a[3]), Point: unescape(a[4]), Options: a[5], FSType: b[0], Source: unescape(b[1])}
	if len(b) > 2 {
		m.SuperOptions = b[2]
	}
	return m, nil
}

// unescape undoes the kernel's octal escapes (\040 for a blank).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// At returns the top mount at point (the last one mounted there), if any.
func At(mounts []Mount, point string) (Mount, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == point {
			return mounts[i], true
		}
	}
	return Mount{}, false
}
