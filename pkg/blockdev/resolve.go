package blockdev

import (
	"fmt"
	"strconv"
	"strings"
)

// Resolve finds the device a root= (or fstab) spec names among devs.
//
// Spec forms:
//
//	/dev/NAME                  kernel name; "/dev/cciss/c0d0" is "cciss!c0d0"
//	UUID=X, LABEL=X            filesystem UUID (any case) and label
//	PARTUUID=X[/PARTNROFF=N]   GPT GUID or MBR ssssssss-pp (any case), as the kernel takes it
//	PARTLABEL=X                GPT partition name
//	/dev/disk/by-uuid/X, by-label/X, by-partuuid/X, by-partlabel/X, by-path/X
//	                           udev's links, with their \xHH escapes
//	MAJ:MIN, or hex as 0803    device number, as the kernel takes it
//
// Values may be quoted. Resolve returns an error wrapping ErrNotFound when
// nothing matches, an error naming every match when a spec that should be
// unique (UUID, LABEL, ...) matches more than one device, and a plain error
// for a spec it cannot parse.
func Resolve(spec string, devs []Device) (Device, error) {
	m, err := parseSpec(spec)
	if err != nil {
		return Device{}, err
	}
	var found []Device
	for _, d := range devs {
		if m.match(d) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return Device{}, fmt.Errorf("%w: %s", ErrNotFound, spec)
	case 1:
	default:
		names := make([]string, len(found))
		for i, d := range found {
			names[i] = d.Name
		}
		return Device{}, fmt.Errorf("%s matches more than one device: %s", spec, strings.Join(names, " and "))
	}
	if m.partOffset == 0 {
		return found[0], nil
	}
	// PARTNROFF: the partition N further on the same disk.
	base := found[0]
	disk := base.Disk
	if disk == "" {
		disk = base.Name
	}
	want := base.Partition + m.partOffset
	for _, d := range devs {
		if d.Disk == disk && d.Partition == want {
			return d, nil
		}
	}
	return Device{}, fmt.Errorf("%w: %s: %s has no partition %d", ErrNotFound, spec, disk, want)
}

// specKind is what a spec compares.
type specKind int

const (
	byName specKind = iota
	byUUID
	byLabel
	byPartUUID
	byPartLabel
	byPath
	byDevnum
)

type matcher struct {
	kind         specKind
	value        string
	major, minor uint32
	partOffset   int
}

func (m matcher) match(d Device) bool {
	switch m.kind {
	case byName:
		return d.Name == m.value
	case byUUID:
		return d.UUID != "" && strings.EqualFold(d.UUID, m.value)
	case byLabel:
		return d.Label != "" && d.Label == m.value
	case byPartUUID:
		return d.PartUUID != "" && strings.EqualFold(d.PartUUID, m.value)
	case byPartLabel:
		return d.PartLabel != "" && d.PartLabel == m.value
	case byPath:
		for _, p := range d.ByPath {
			if p == m.value {
				return true
			}
		}
		return false
	case byDevnum:
		return d.Major == m.major && d.Minor == m.minor
	}
	return false
}

// diskLinks are udev's /dev/disk folders Resolve understands.
var diskLinks = []struct {
	dir  string
	kind specKind
}{
	{"/dev/disk/by-uuid/", byUUID},
	{"/dev/disk/by-label/", byLabel},
	{"/dev/disk/by-partuuid/", byPartUUID},
	{"/dev/disk/by-partlabel/", byPartLabel},
	{"/dev/disk/by-path/", byPath},
}

// tags are the KEY=value forms; keys are matched without regard to case.
var tags = []struct {
	key  string
	kind specKind
}{
	{"UUID=", byUUID},
	{"LABEL=", byLabel},
	{"PARTUUID=", byPartUUID},
	{"PARTLABEL=", byPartLabel},
}

func parseSpec(spec string) (matcher, error) {
	s := strings.TrimSpace(spec)
	var m matcher
	for _, l := range diskLinks {
		if v, ok := strings.CutPrefix(s, l.dir); ok {
			m.kind, m.value = l.kind, unescapeUdev(v)
			if m.value == "" || strings.Contains(v, "/") {
				return m, fmt.Errorf("root spec %q: bad %s name", spec, l.dir)
			}
			return m, nil
		}
	}
	if strings.HasPrefix(s, "/dev/disk/") {
		return m, fmt.Errorf("root spec %q: only by-uuid, by-label, by-partuuid, by-partlabel and by-path links are understood", spec)
	}
	if v, ok := strings.CutPrefix(s, "/dev/"); ok {
		if v == "" {
			return m, fmt.Errorf("root spec %q: no device name", spec)
		}
		// devtmpfs turns '!' in a kernel name into a sub-folder.
		m.kind, m.value = byName, strings.ReplaceAll(v, "/", "!")
		return m, nil
	}
	for _, t := range tags {
		if len(s) < len(t.key) || !strings.EqualFold(s[:len(t.key)], t.key) {
			continue
		}
		m.kind, m.value = t.kind, unquote(s[len(t.key):])
		if m.kind == byPartUUID {
			if u, off, ok := strings.Cut(m.value, "/"); ok {
				o, ok := strings.CutPrefix(strings.ToUpper(off), "PARTNROFF=")
				n, err := strconv.Atoi(o)
				if !ok || err != nil {
					return m, fmt.Errorf("root spec %q: want PARTUUID=X/PARTNROFF=N", spec)
				}
				m.value, m.partOffset = u, n
			}
		}
		if m.value == "" {
			return m, fmt.Errorf("root spec %q: empty value", spec)
		}
		return m, nil
	}
	if mj, mn, ok := strings.Cut(s, ":"); ok {
		a, err1 := strconv.ParseUint(mj, 10, 32)
		b, err2 := strconv.ParseUint(mn, 10, 32)
		if err1 != nil || err2 != nil {
			return m, fmt.Errorf("root spec %q: want MAJOR:MINOR", spec)
		}
		m.kind, m.major, m.minor = byDevnum, uint32(a), uint32(b)
		return m, nil
	}
	if x, err := strconv.ParseUint(s, 16, 32); err == nil {
		// The kernel's new_decode_dev: the low 8 bits of the minor, then
		// 12 bits of major, then the rest of the minor; 0803 is 8:3 and
		// 10300 is 259:0.
		m.kind = byDevnum
		m.major = uint32((x & 0xfff00) >> 8)
		m.minor = uint32((x & 0xff) | ((x >> 12) & 0xfff00))
		return m, nil
	}
	return m, fmt.Errorf("root spec %q: not /dev/NAME, UUID=, LABEL=, PARTUUID=, PARTLABEL=, a /dev/disk link or MAJ:MIN", spec)
}

// unquote strips one pair of matching quotes around a value.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// unescapeUdev decodes the \xHH escapes udev writes into link names for
// bytes outside its safe set (a space is \x20, a slash \x2f).
func unescapeUdev(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
