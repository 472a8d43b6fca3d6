package cmdline

import (
	"fmt"
	"path"
	"strings"
)

// MountPolicy is what a protected boot does with a mount of fstab other
// than "/" (ofs-mounts=, and MOUNTS= in /etc/ofsroot/ofsroot.conf).
type MountPolicy int

const (
	// MountKeep leaves the fstab line as it is: mounted as it says,
	// writable if it says so (the default: data partitions stay
	// persistent).
	MountKeep MountPolicy = iota
	// MountProtect gives the mount its own overlay with a RAM upper: the
	// init write-protects the device, mounts it read-only and builds the
	// overlay at the mount point in the new root.
	MountProtect
	// MountRO mounts it read-only: "ro" in its fstab options.
	MountRO
)

func (p MountPolicy) String() string {
	switch p {
	case MountProtect:
		return "protect"
	case MountRO:
		return "ro"
	}
	return "keep"
}

// ParseMountPolicy reads keep, protect or ro (any case).
func ParseMountPolicy(s string) (MountPolicy, bool) {
	switch strings.ToLower(s) {
	case "keep":
		return MountKeep, true
	case "protect":
		return MountProtect, true
	case "ro":
		return MountRO, true
	}
	return MountKeep, false
}

// MountRule is one mount point's policy.
type MountRule struct {
	Mount  string // absolute and clean, never "/"
	Policy MountPolicy
}

func (r MountRule) String() string { return r.Mount + ":" + r.Policy.String() }

// ParseMountRules reads a list of MOUNT:POLICY items separated by commas
// or blanks ("/boot:protect,/var/log:ro", or the same with spaces as
// MOUNTS= in ofsroot.conf has it). A later item for the same mount point
// replaces an earlier one. Items that cannot be used are left out, each
// with a problem naming it.
func ParseMountRules(s string) (rules []MountRule, problems []string) {
	items := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	for _, it := range items {
		mount, pol, ok := strings.Cut(it, ":")
		if !ok {
			problems = append(problems, fmt.Sprintf("%q: want MOUNT:POLICY (e.g. /boot:protect)", it))
			continue
		}
		m, mok := cleanMount(mount)
		if !mok {
			problems = append(problems, fmt.Sprintf("%q: %q is not an absolute mount point other than /", it, mount))
			continue
		}
		p, pok := ParseMountPolicy(pol)
		if !pok {
			problems = append(problems, fmt.Sprintf("%q: policy %q is not one of keep, protect, ro", it, pol))
			continue
		}
		rules = setRule(rules, MountRule{Mount: m, Policy: p})
	}
	return rules, problems
}

// MergeMountRules returns base with every rule of over put in its place
// (over wins for the mount points both name).
func MergeMountRules(base, over []MountRule) []MountRule {
	out := append([]MountRule(nil), base...)
	for _, r := range over {
		out = setRule(out, r)
	}
	return out
}

func setRule(rules []MountRule, r MountRule) []MountRule {
	for i := range rules {
		if rules[i].Mount == r.Mount {
			rules[i] = r
			return rules
		}
	}
	return append(rules, r)
}

// cleanMount accepts an absolute path other than "/" without control
// characters, and cleans it.
func cleanMount(s string) (string, bool) {
	if !strings.HasPrefix(s, "/") || len(s) > 4096 {
		return "", false
	}
	c := path.Clean(s)
	if c == "/" {
		return "", false
	}
	for _, r := range c {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return c, true
}

// Alias is a protection word of another overlay-root tool the init
// understands so that a device moved from it keeps its command line
// (overlayroot=, systemd.volatile=).
type Alias struct {
	// Word is the word as written, key=value ("" when none was given).
	Word string
	// Mode says in ofsroot's terms what it became, for the log.
	Mode string
	// Overridden: overlayfs= was given too and decides; the alias changed
	// nothing.
	Overridden bool
	// Unknown: the value is none the tool knows; the root is protected
	// (fail closed) and Warning names the word.
	Unknown bool
	// Notes are what of the word's meaning ofsroot does not carry over.
	Notes []string
}

// aliasResult is what an alias word asks for.
type aliasResult struct {
	mode    OverlayMode
	set     bool // false: leaves the protection word alone
	recurse bool
	unknown bool
	text    string
	notes   []string
}

// overlayroot= and systemd.volatile= as their tools read them:
//
//   - overlayroot (Debian's and Ubuntu's overlayroot package, its
//     initramfs-tools script init-bottom/overlayroot): "tmpfs[:OPTS]" puts
//     the root under a tmpfs overlay; OPTS is a comma list in which
//     recurse=1 (the default) also overlays every other mount of fstab
//     but vfat/fat and virtual filesystems (and swap, off unless swap=1);
//     recurse=0 overlays "/" alone. "disabled" turns it off.
//     "device:OPTS", "/dev/NAME" and "crypt:OPTS" keep the upper on a
//     disk. Any other value is logged as invalid and the root boots
//     unprotected (its fail() exits 0).
//   - systemd.volatile: "overlay" is a tmpfs overlay over "/" (other
//     mounts as fstab says); "yes" a tmpfs root with /usr from disk;
//     "state" a tmpfs /var (systemd's fstab generator does it in the real
//     root); "no" off; other values are ignored.
//
// Unknown values fail closed here (protected), unlike both tools.
func parseAlias(key, val string) aliasResult {
	lower := strings.ToLower(val)
	if key == "systemd.volatile" {
		switch lower {
		case "overlay":
			return aliasResult{mode: OverlayOn, set: true, text: "overlayfs=yes (root under a RAM overlay; other mounts as fstab says)"}
		case "state":
			return aliasResult{text: "nothing here: systemd's fstab generator mounts a tmpfs on /var in the real root"}
		}
		if on, ok := ParseBool(val); ok {
			if on {
				return aliasResult{mode: OverlayOn, set: true, text: "overlayfs=yes (the nearest to systemd's tmpfs root: every change in RAM, the image's files kept)"}
			}
			return aliasResult{mode: OverlayOff, set: true, text: "overlayfs=no"}
		}
		return aliasResult{mode: OverlayOn, set: true, unknown: true, text: "overlayfs=yes (PROTECTED: an unknown protection word fails closed)"}
	}
	// overlayroot
	kind, opts, _ := strings.Cut(val, ":")
	switch strings.ToLower(kind) {
	case "disabled":
		return aliasResult{mode: OverlayOff, set: true, text: "overlayfs=no"}
	case "tmpfs":
		r := aliasResult{mode: OverlayOn, set: true, recurse: true}
		r.recurse, r.notes = overlayrootOptions(opts)
		r.text = overlayrootText(r.recurse)
		return r
	case "device", "crypt":
		r := aliasResult{mode: OverlayOn, set: true}
		r.recurse, r.notes = overlayrootOptions(opts)
		r.notes = append(r.notes, fmt.Sprintf("overlayroot's %s upper is not carried over: the upper is in RAM (ofs-upper= names a partition for a persistent one)", kind))
		r.text = overlayrootText(r.recurse)
		return r
	}
	if strings.HasPrefix(val, "/dev/") {
		return aliasResult{mode: OverlayOn, set: true, recurse: true, text: overlayrootText(true),
			notes: []string{"overlayroot's upper on " + val + " is not carried over: the upper is in RAM (ofs-upper= names a partition for a persistent one)"}}
	}
	return aliasResult{mode: OverlayOn, set: true, unknown: true, text: "overlayfs=yes (PROTECTED: an unknown protection word fails closed; overlayroot itself would boot the root writable)"}
}

func overlayrootText(recurse bool) string {
	if recurse {
		return "overlayfs=yes with every other fstab mount of a block device protected but vfat (overlayroot's recurse=1; ofs-mounts= and MOUNTS= in ofsroot.conf still decide for the mounts they name)"
	}
	return "overlayfs=yes (root only: overlayroot's recurse=0; other mounts as fstab says)"
}

// overlayrootOptions reads overlayroot's OPTS: recurse=0|1 matters, swap=1
// is noted (a protected root never swaps to the card), the rest ignored.
func overlayrootOptions(opts string) (recurse bool, notes []string) {
	recurse = true
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch strings.ToLower(k) {
		case "":
		case "recurse":
			recurse = v != "0"
		case "swap":
			if v != "0" {
				notes = append(notes, "swap=1 is not carried over: a protected root never swaps to the card")
			}
		case "debug", "timeout", "dev", "mkfs", "fstype", "pass", "dir", "driver":
		default:
			notes = append(notes, fmt.Sprintf("option %q ignored", o))
		}
	}
	return recurse, notes
}

// applyAlias sets the protection from the last overlayroot= or
// systemd.volatile= word, unless overlayfs= was given: that one wins.
func applyAlias(c *Config, key, val string, overlaySeen bool, warn func(key, val, problem, def string)) {
	r := parseAlias(key, val)
	c.Alias = Alias{Word: key + "=" + val, Mode: r.text, Notes: r.notes}
	if overlaySeen {
		c.Alias.Overridden = true
		c.Alias.Mode = "nothing: overlayfs=" + c.Overlay.String() + " is given too and decides"
		return
	}
	if r.unknown {
		warn(key, val, "not a value this init knows", "yes (PROTECTED: an unknown protection word fails closed)")
	}
	if r.set {
		c.Overlay = r.mode
		c.Alias.Unknown = r.unknown
		c.MountsRecurse = r.recurse && r.mode.Protected()
	}
}

// ConfFile is where the real root keeps ofsroot's settings; MOUNTS= in it
// is the per-mount policy (ofs-mounts= on the command line wins for the
// mount points it names).
const ConfFile = "/etc/ofsroot/ofsroot.conf"

// ConfVars reads a shell-style settings file as ofsroot.conf is written:
// NAME=value, NAME="value" or NAME='value' lines (an "export " before is
// allowed), comments and blank lines. Nothing is expanded; a later
// assignment wins. Lines it cannot read are left out.
func ConfVars(data []byte) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, val, ok := strings.Cut(line, "=")
		if !ok || !validName(name) {
			continue
		}
		switch {
		case strings.HasPrefix(val, `"`) || strings.HasPrefix(val, `'`):
			end := strings.IndexByte(val[1:], val[0])
			if end < 0 {
				continue // unterminated: a shell would fail too
			}
			val = val[1 : 1+end]
		default:
			if i := strings.IndexAny(val, " \t"); i >= 0 {
				val = val[:i]
			}
		}
		vars[name] = val
	}
	return vars
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
