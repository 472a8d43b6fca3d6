package bootinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/fstab"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
)

// confLimit caps what the init reads of ofsroot.conf.
const confLimit = 64 << 10

// MountsDir is where protected mounts' devices are mounted read-only
// (inside /run, moved into the new root at the switch).
const MountsDir = "ofsroot/mounts"

// logAlias says what a migration word (overlayroot=, systemd.volatile=)
// became, and records it.
func (b *boot) logAlias() {
	a := b.cfg.Alias
	if a.Word == "" {
		return
	}
	b.status.Alias = &bootstatus.Alias{Word: a.Word, Mode: a.Mode, Overridden: a.Overridden}
	if !a.Overridden {
		b.status.Requested = a.Word
	}
	b.log.Infof("%s (a word of another overlay-root tool) becomes: %s", a.Word, a.Mode)
	for _, n := range a.Notes {
		b.log.Warnf("%s: %s", a.Word, n)
		b.status.Warnings = append(b.status.Warnings, a.Word+": "+n)
	}
	if a.Unknown {
		b.log.Loudf("%s is not a value that tool knows.\nFailing closed: the root is PROTECTED (overlayfs=yes). Fix the word, or use overlayfs=yes|no.", a.Word)
	}
}

// mountRules are the per-mount rules of the command line and of the
// real root's ofsroot.conf (read inside root, capped; a bad file is
// ignored loudly).
func (b *boot) mountRules(root string) (cmd, conf []cmdline.MountRule) {
	data, err := b.readRootFile(root, cmdline.ConfFile, confLimit)
	if err == nil && data != nil {
		if v, ok := cmdline.ConfVars(data)["MOUNTS"]; ok {
			var problems []string
			conf, problems = cmdline.ParseMountRules(v)
			for _, p := range problems {
				msg := fmt.Sprintf("%s: MOUNTS=%q: %s; that item is left out", cmdline.ConfFile, v, p)
				b.log.Warnf("%s", msg)
				b.status.Warnings = append(b.status.Warnings, msg)
			}
		}
	}
	return b.cfg.Mounts, conf
}

// unprotectedMountPolicy says, when the root is not protected, that a
// per-mount policy on the command line does nothing. It makes no step:
// it stands in the boot's list where mountPolicySteps would.
func (b *boot) unprotectedMountPolicy() []Step {
	if len(b.cfg.Mounts) == 0 && !b.cfg.MountsRecurse {
		return nil
	}
	var why string
	switch {
	case b.status.Mode == bootstatus.Degraded:
		why = "the boot is degraded (no overlay)"
	case b.cfg.Overlay == cmdline.OverlaySandbox:
		why = "overlayfs=sandbox keeps the mounts to the sandbox's own fstab handling"
	default:
		why = "overlayfs=no: the root is not protected"
	}
	b.log.Warnf("per-mount policy (ofs-mounts=) ignored: %s; every mount is as fstab says", why)
	return nil
}

// mountPolicySteps plan the policy over the real root's fstab and
// return the steps that protect mounts; rewriteFstab then writes every
// mount's line (applyMountPolicy).
func (b *boot) mountPolicySteps() []Step {
	data, _ := b.readRootFile(b.paths.ro, "/etc/fstab", fstabLimit)
	cmd, conf := b.mountRules(b.paths.ro)
	recurseFrom := ""
	if b.cfg.MountsRecurse {
		recurseFrom = b.cfg.Alias.Word
	}
	plans, warns := planMounts(data, cmd, conf, b.cfg.MountsRecurse, recurseFrom, bootstatus.ReadOnlyLayer, bootstatus.WritableLayer)
	for _, w := range warns {
		b.log.Warnf("per-mount policy: %s", w)
		b.status.Warnings = append(b.status.Warnings, "per-mount policy: "+w)
	}
	b.mountPlans = plans
	taken := map[string]bool{}
	var steps []Step
	for _, p := range plans {
		if p.protect {
			steps = append(steps, b.protectMountStep(p, mountDirName(p.entry.File, taken)))
		}
	}
	return steps
}

// protectMountStep builds p's overlay: the device write-protected and
// mounted read-only under /run/ofsroot/mounts/NAME, the upper and work
// folders in the root's RAM layer (one cap for all), the overlay at the
// mount point inside the new root. Any failure undoes what was built and
// makes the mount read-only instead: never writable.
func (b *boot) protectMountStep(p *mountPlan, name string) Step {
	lower := filepath.Join(b.paths.run, MountsDir, name)
	rw, rwShown := filepath.Join(b.paths.rw, "mounts", name), bootstatus.WritableLayer+"/mounts/"+name
	e := p.entry
	return Step{Name: fmt.Sprintf("protect %s: blockdev --setro %s; mount -o ro %s %s; mount -t overlay (upper in %s) %s", e.File, e.Spec, e.Spec, lower, rwShown, e.File), Optional: true, Do: func() error {
		err := b.protectMount(p, lower, rw)
		if err == nil {
			p.status.Lower = filepath.Join("/run", MountsDir, name)
			p.status.Upper = rwShown + "/upper"
			return nil
		}
		mountfs.Unmount(lower, unix.MNT_DETACH)
		p.protect = false
		p.status.Result = resultProtectFailed
		p.status.Note = fmt.Sprintf("protect failed (%v): the fstab line is made read-only instead", err)
		b.warnLoud(fmt.Sprintf("%s could not be protected (%v).\nIts fstab line is made READ-ONLY instead: the device is not written.", e.File, err))
		return err
	}}
}

func (b *boot) protectMount(p *mountPlan, lower, rw string) error {
	e := p.entry
	// The changes go beside the root's own, in its writable layer: a
	// tmpfs or a zram disk, both gone at the next boot. A persistent
	// layer would keep them: the mount is made read-only instead.
	switch u := b.status.Upper; {
	case u != nil && u.Kind == bootstatus.UpperDevice:
		return fmt.Errorf("the writable layer is persistent (%s): %s's changes would be kept there, and protect means gone at the next boot", u.Device, e.File)
	case b.status.RAM == nil && (u == nil || u.Kind != bootstatus.UpperZram):
		return fmt.Errorf("the root has no RAM layer to hold %s's changes", e.File)
	}
	dev, err := b.findMountDevice(e.Spec)
	if err != nil {
		return err
	}
	p.status.Device = dev.Path
	if err := blockdev.SetReadOnly(dev.Path, true); err != nil {
		// Mounted read-only still; say it, as for the root.
		b.log.Warnf("could not write-protect %s below the filesystem (%v): it is mounted read-only, but the kernel could still write it", dev.Path, err)
	}
	fstype := e.VfsType
	if fstype == "auto" || fstype == "" {
		fstype = dev.FSType
	}
	flags, data := mountfs.ParseOptions(mountOptions(e.MntOps))
	flags |= unix.MS_RDONLY
	if f, err := os.Open(dev.Path); err == nil {
		st, ok, _ := blockdev.ReadExtState(f)
		f.Close()
		if ok && st.NeedsRecovery {
			// The journal is not replayed: that would write the device.
			data = strings.Join(append(nonEmpty(data), "noload"), ",")
			b.log.Warnf("%s: the journal of %s needs recovery; not replayed under protection (noload)", e.File, dev.Path)
		}
	}
	if err := os.MkdirAll(lower, 0o755); err != nil {
		return err
	}
	if err := mountfs.Mount(dev.Path, lower, fstype, flags, data); err != nil {
		return err
	}
	upper, work := rw+"/upper", rw+"/work"
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	target, err := b.mountPointIn(e.File)
	if err != nil {
		return err
	}
	ovl := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	return mountfs.Mount("ofsroot-"+strings.ReplaceAll(strings.Trim(e.File, "/"), "/", "-"), target, "overlay", 0, ovl)
}

// mountPointIn is the mount point's folder in the new root, links
// followed inside it, made (in the RAM layer) when missing.
func (b *boot) mountPointIn(m string) (string, error) {
	target, err := rootfile.ResolveIn(b.paths.newRoot, m)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if err := os.MkdirAll(filepath.Join(b.paths.newRoot, m), 0o755); err != nil {
			return "", err
		}
		if target, err = rootfile.ResolveIn(b.paths.newRoot, m); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", err
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("mount point %s is not a folder in the root", m)
	}
	return target, nil
}

// MountDeviceWait is how long the init waits for a protected mount's
// device (its driver probed with the root's, so it is usually there).
var MountDeviceWait = 3 * time.Second

func (b *boot) findMountDevice(spec string) (blockdev.Device, error) {
	start := monotonic()
	for {
		devs, err := blockdev.Scan("/sys", "/dev")
		if err == nil {
			d, rerr := blockdev.Resolve(spec, devs)
			if rerr == nil {
				return d, nil
			}
			if !errors.Is(rerr, blockdev.ErrNotFound) || monotonic()-start >= MountDeviceWait {
				return blockdev.Device{}, fmt.Errorf("device %s: %w (block devices seen: %s)", spec, rerr, blockdev.Summary(devs))
			}
		} else if monotonic()-start >= MountDeviceWait {
			return blockdev.Device{}, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// applyMountPolicy rewrites the fstab lines of the planned mounts and
// records the result in the status.
func (b *boot) applyMountPolicy(data []byte) []byte {
	if len(b.mountPlans) == 0 {
		return data
	}
	byMount := map[string][]*mountPlan{}
	for _, p := range b.mountPlans {
		byMount[p.entry.File] = append(byMount[p.entry.File], p)
	}
	out := fstab.EditEntries(data, func(e fstab.Entry, raw string) ([]string, bool) {
		ps := byMount[filepathClean(e.File)]
		if len(ps) == 0 {
			return nil, false
		}
		p := ps[0]
		byMount[filepathClean(e.File)] = ps[1:]
		return p.fstabLines(raw)
	})
	b.status.Mounts = nil
	for _, p := range b.mountPlans {
		b.status.Mounts = append(b.status.Mounts, p.status)
		b.log.Infof("mount %s: %s (%s from %s)%s", p.status.Mount, p.status.Result, p.status.Policy, p.status.From, map[bool]string{true: "; " + p.status.Note, false: ""}[p.status.Note != ""])
	}
	return out
}

func filepathClean(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	return filepath.Clean(p)
}
