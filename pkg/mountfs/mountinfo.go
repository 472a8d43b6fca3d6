package mountfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/fstab"
)

// MountInfo is one line of /proc/self/mountinfo (proc(5)): the kernel's
// own word on what is mounted, which tools trust over any config file.
type MountInfo struct {
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
func (m MountInfo) ReadOnly() bool { return hasOption(m.Options, "ro") }

// SuperReadOnly says whether the filesystem itself is read-only.
func (m MountInfo) SuperReadOnly() bool { return hasOption(m.SuperOptions, "ro") }

// Option returns the value of key=value in the filesystem's options.
func (m MountInfo) Option(key string) (string, bool) {
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

// ParseMountinfo reads mountinfo text. Blank lines are skipped; a line
// it cannot read is an error naming the line.
func ParseMountinfo(r io.Reader) ([]MountInfo, error) {
	var out []MountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := ParseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// ParseMountinfoLine reads one mountinfo line. Paths have the kernel's
// octal escapes (\040 for a blank) undone.
func ParseMountinfoLine(line string) (MountInfo, error) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return MountInfo{}, fmt.Errorf("no \" - \" separator: %q", line)
	}
	a, b := strings.Fields(pre), strings.Fields(post)
	if len(a) < 6 || len(b) < 2 {
		return MountInfo{}, fmt.Errorf("too few fields: %q", line)
	}
	id, err1 := strconv.Atoi(a[0])
	parent, err2 := strconv.Atoi(a[1])
	if err1 != nil || err2 != nil {
		return MountInfo{}, fmt.Errorf("bad mount ids: %q", line)
	}
	m := MountInfo{ID: id, Parent: parent, MajorMinor: a[2], Root: fstab.Unescape(a[3]), Point: fstab.Unescape(a[4]),
		Options: a[5], FSType: b[0], Source: fstab.Unescape(b[1])}
	if len(b) > 2 {
		m.SuperOptions = b[2]
	}
	return m, nil
}

// MountAt returns the top mount at point (the last one mounted there), if
// any.
func MountAt(mounts []MountInfo, point string) (MountInfo, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == point {
			return mounts[i], true
		}
	}
	return MountInfo{}, false
}

// ReadMountinfo reads the mount table of the calling thread's mount
// namespace (/proc/thread-self/mountinfo: a goroutine locked to a thread
// that entered another namespace sees that one).
func ReadMountinfo() ([]MountInfo, error) {
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	return ParseMountinfo(f)
}
