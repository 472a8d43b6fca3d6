package bootinit

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/fstab"
)

// The per-mount policy of a protected boot (ofs-mounts=, MOUNTS= in
// /etc/ofsroot/ofsroot.conf, overlayroot=tmpfs's recurse): for each mount
// of the real root's fstab other than "/" and swap, keep it, mount it
// read-only, or protect it (its own overlay with a RAM upper over the
// write-protected device). This file decides (pure); mountpolicy_linux.go
// mounts and rewrites.

// Where a policy came from, for the status and the fstab comments.
const (
	fromCmdline = "ofs-mounts="
	fromConf    = "ofsroot.conf"
	fromDefault = "default"
)

// mountPlan is one fstab entry's policy and, once the init acted, its
// result.
type mountPlan struct {
	entry  fstab.Entry
	policy cmdline.MountPolicy
	// protect: the init builds the overlay (policy protect, a block
	// device, auto-mounted, not under a mount the real init makes later).
	// Otherwise a protect policy ends as a read-only line.
	protect bool
	status  bootstatus.Mount
}

// virtualTypes are filesystems with no device of their own to protect.
var virtualTypes = map[string]bool{
	"tmpfs": true, "ramfs": true, "proc": true, "sysfs": true, "devtmpfs": true, "devpts": true,
	"cgroup": true, "cgroup2": true, "debugfs": true, "tracefs": true, "securityfs": true,
	"pstore": true, "efivarfs": true, "mqueue": true, "hugetlbfs": true, "configfs": true,
	"bpf": true, "overlay": true, "nfs": true, "nfs4": true, "cifs": true, "smb3": true,
	"9p": true, "virtiofs": true, "fuse": true, "none": true,
}

// blockEntry says whether e mounts a block device: a device spec the
// init can resolve, a filesystem that is not virtual, not a bind mount.
func blockEntry(e fstab.Entry) bool {
	if virtualTypes[e.VfsType] || strings.HasPrefix(e.VfsType, "fuse.") || e.HasOption("bind") || e.HasOption("rbind") {
		return false
	}
	for _, p := range []string{"/dev/", "UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="} {
		if strings.HasPrefix(e.Spec, p) {
			return true
		}
	}
	return false
}

// planMounts decides the policy of each mount of an fstab: the command
// line's rules win, then the file's, then overlayroot's recurse (every
// block mount but vfat, as overlayroot does it), else keep.
// The warnings name rules for mount points fstab lacks and policies that
// cannot be carried out as asked.
func planMounts(data []byte, cmd, conf []cmdline.MountRule, recurse bool, recurseFrom string, skip ...string) (plans []*mountPlan, warnings []string) {
	find := func(rules []cmdline.MountRule, m string) (cmdline.MountPolicy, bool) {
		for _, r := range rules {
			if r.Mount == m {
				return r.Policy, true
			}
		}
		return cmdline.MountKeep, false
	}
	points := map[string]bool{}
	for _, l := range fstab.Parse(data) {
		e := l.Entry
		if e == nil || e.IsRoot() || e.IsSwap() || !strings.HasPrefix(e.File, "/") {
			continue
		}
		m := path.Clean(e.File)
		if contains(skip, m) {
			continue
		}
		p := &mountPlan{entry: *e}
		p.entry.File = m
		from := fromDefault
		if pol, ok := find(cmd, m); ok {
			p.policy, from = pol, fromCmdline
		} else if pol, ok := find(conf, m); ok {
			p.policy, from = pol, fromConf
		} else if recurse && blockEntry(*e) && !isFAT(e.VfsType) {
			p.policy, from = cmdline.MountProtect, recurseFrom
		}
		p.status = bootstatus.Mount{Mount: m, Spec: e.Spec, Policy: p.policy.String(), From: from, Result: "kept"}
		switch p.policy {
		case cmdline.MountRO:
			p.status.Result = "read-only"
		case cmdline.MountProtect:
			switch {
			case !blockEntry(*e):
				p.policy = cmdline.MountKeep
				p.status.Note = fmt.Sprintf("not protected: %s on %s is not a block device's filesystem (a virtual, network or bind mount); kept as fstab says", e.VfsType, e.Spec)
				warnings = append(warnings, m+": "+p.status.Note)
			case e.HasOption("noauto"):
				p.policy = cmdline.MountRO
				p.status.Result = "read-only"
				p.status.Note = "noauto: not mounted at boot, so made read-only for when it is"
			case points[m]:
				p.policy = cmdline.MountRO
				p.status.Result = "read-only"
				p.status.Note = "listed again in fstab: the first line is protected, this one made read-only"
			default:
				p.protect = true
				p.status.Result = "protected"
			}
		}
		points[m] = true
		plans = append(plans, p)
	}
	// A protected mount under a mount the real init makes later would
	// be hidden by it: read-only instead.
	for _, p := range plans {
		if !p.protect {
			continue
		}
		for _, q := range plans {
			if q != p && !q.protect && under(p.entry.File, q.entry.File) {
				p.protect, p.policy = false, cmdline.MountRO
				p.status.Result = "read-only"
				p.status.Note = fmt.Sprintf("not protected: it is under %s, which the real init mounts later (over the overlay); made read-only instead (protect %s too to protect both)", q.entry.File, q.entry.File)
				warnings = append(warnings, p.entry.File+": "+p.status.Note)
				break
			}
		}
	}
	// Parents first: /var before /var/log.
	sort.SliceStable(plans, func(i, j int) bool { return depth(plans[i].entry.File) < depth(plans[j].entry.File) })
	for _, rules := range []struct {
		name  string
		rules []cmdline.MountRule
	}{{fromCmdline, cmd}, {fromConf, conf}} {
		for _, r := range rules.rules {
			if !points[r.Mount] {
				warnings = append(warnings, fmt.Sprintf("%s asks %s for %s, which is not a mount of /etc/fstab: nothing to do", rules.name, r.Policy, r.Mount))
			}
		}
	}
	return plans, warnings
}

// fstabLines are the lines the rewritten fstab has for p in place of
// its own line raw.
func (p *mountPlan) fstabLines(raw string) ([]string, bool) {
	s := p.status
	switch {
	case p.protect && s.Result == "protected":
		return []string{
			fmt.Sprintf("# ofsroot: %s is protected (%s from %s): the initramfs mounted it as an overlay with", s.Mount, s.Policy, s.From),
			fmt.Sprintf("# its upper in RAM (%s) over %s, write-protected and read-only at %s.", s.Upper, s.Device, s.Lower),
			"# Changes to it are lost at reboot. The original line:",
			"# " + raw,
		}, true
	case s.Result == "read-only" || s.Result == resultProtectFailed:
		why := fmt.Sprintf("%s from %s", s.Policy, s.From)
		if s.Note != "" {
			why += "; " + s.Note
		}
		return []string{fmt.Sprintf("# ofsroot: %s made read-only (%s). Was: %s", s.Mount, why, raw), p.entry.ReadOnlyLine()}, true
	}
	return nil, false
}

// resultProtectFailed is the result of a protect the init could not
// carry out: the line is made read-only, never left writable.
const resultProtectFailed = "read-only (protect failed)"

// mountDirName names a mount point's folders: /var/log is "var-log".
func mountDirName(m string, taken map[string]bool) string {
	name := strings.ReplaceAll(strings.Trim(m, "/"), "/", "-")
	base := name
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	taken[name] = true
	return name
}

func isFAT(t string) bool { return t == "vfat" || t == "fat" || t == "msdos" }

func under(p, parent string) bool { return strings.HasPrefix(p, parent+"/") }

func depth(p string) int { return strings.Count(p, "/") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mountOptions are fstab options fit for mount(2): the ones only
// mount(8), systemd or the fstab reader act on are dropped.
func mountOptions(opts string) string {
	var out []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "nofail", o == "noauto", o == "auto", o == "user", o == "users", o == "nouser",
			o == "owner", o == "group", o == "_netdev", o == "sw", o == "defaults",
			strings.HasPrefix(o, "x-"), strings.HasPrefix(o, "comment="):
			continue
		}
		out = append(out, o)
	}
	return strings.Join(out, ",")
}
