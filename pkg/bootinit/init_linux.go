package bootinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/atomicfile"
	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/fstab"
	"github.com/ofsroot/ofsroot/pkg/klog"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
	"github.com/ofsroot/ofsroot/pkg/switchroot"
	"github.com/ofsroot/ofsroot/pkg/version"
)

// boot holds what the steps learn as they go.
type boot struct {
	log    *klog.Logger
	x      *Executor
	cfg    cmdline.Config
	status bootstatus.Status

	root     blockdev.Device
	fstype   string
	newRoot  string // what becomes "/" at the switch
	memTotal uint64
	ramBytes uint64 // the RAM layer's size (ramSize)
	paths    layout
	mods     moduleState // modules_linux.go
	gcOn     func()      // turns the collector back on (modules_linux.go)

	// writeProtected: the root device has the kernel's read-only flag
	// (protect_linux.go); noLoad: its journal is not to be replayed.
	writeProtected, noLoad bool
	// errorsContinue: the superblock says errors=panic; mount with
	// errors=continue (protect_linux.go).
	errorsContinue bool
	// layer is the persistent layer, when ofs-upper= names a device
	// and it could be used (upper_device_linux.go).
	layer *deviceLayer
	// mountPlans: the per-mount policy (mountpolicy.go).
	mountPlans []*mountPlan
	// overlayAgain: the overlay over the persistent layer failed; it is
	// built again over RAM (layerSteps).
	overlayAgain bool
}

// layout names the folders the layers are built in; tests build them
// under a temporary folder.
type layout struct {
	ro, rw, newRoot, run string
}

var initramfsLayout = layout{ro: bootstatus.ReadOnlyLayer, rw: bootstatus.WritableLayer, newRoot: NewRoot, run: "/run"}

// Main runs the init. It never returns: it execs the real init or, when
// there is nothing to boot, carries out the rescue policy.
func Main() {
	start := monotonic()
	gcOn := collectorOffForBoot() // modules_linux.go
	log := klog.New()
	b := &boot{log: log, x: &Executor{Log: log, Now: monotonic}, paths: initramfsLayout, gcOn: gcOn}
	b.status = bootstatus.Status{Version: 1, StartedAt: start.Seconds(), Root: bootstatus.Root{}, OfsrootVersion: version.Get(), Kernel: kernelRelease()}
	log.Infof("start t=%.6f (ofsroot %s, kernel %s)", start.Seconds(), b.status.OfsrootVersion, b.status.Kernel)
	defer func() {
		// PID 1 must not die: the kernel panics when it does. A bug
		// here ends in the rescue policy, loudly, instead.
		if r := recover(); r != nil {
			log.Loudf("BUG: the init panicked: %v\n%s", r, debug.Stack())
			b.rescue(fmt.Errorf("internal error: %v", r))
		}
	}()
	err := b.run()
	b.rescue(err)
}

func (b *boot) run() error {
	return b.x.Run(b.bootSteps()...)
}

// bootSteps is the whole boot, every mode, in order, for one executor
// run. What a step needs from earlier ones (the command line, the root
// device, the RAM size) is not known yet when the list is made: those
// entries are made as they come up (Steps, one), the mode's branches are
// When, and the fail-closed fallbacks are OnError (see Step).
func (b *boot) bootSteps() []Step {
	protected := func() bool { return b.cfg.Overlay.Protected() }
	sandbox := func() bool { return b.cfg.Overlay == cmdline.OverlaySandbox }
	// layered: the overlay is built and becomes / (a sandbox's layers
	// stay outside, in the initramfs).
	layered := func() bool { return b.status.Mode == bootstatus.Protected && !sandbox() }
	degraded := func() bool { return b.status.Mode == bootstatus.Degraded }
	return append(b.earlyMounts(), []Step{
		{Name: "read the kernel command line from /proc/cmdline", Do: b.readCommandLine},
		{Steps: one(b.panicTimeout)},
		b.loadModules(),
		// The device events loadModules listens to serve the root
		// search only.
		{Steps: one(func() Step { return closing(b.findRoot(), b.closeUevents) })},
		{Steps: one(b.loadRootFSModules)},

		// Protected: write-protect the device before anything mounts
		// it, mount it read-only, build the writable layer and the
		// overlay over it (layerSteps; degraded when they fail).
		{When: protected, Steps: one(b.writeProtect)},
		{When: protected, Steps: one(func() Step { return b.mountRealRoot(b.paths.ro, true) })},
		{When: protected, Steps: b.layerSteps},
		// Plain (overlayfs=no): the real root is the new root.
		{When: not(protected), Steps: one(b.plainRoot)},

		// The other fstab mounts (mountpolicy_linux.go), the layers
		// moved into the new root, its fstab in the RAM layer; a
		// degraded root's fstab kept from remounting it read-write.
		{When: layered, Steps: b.mountPolicySteps},
		{When: not(layered), Steps: b.unprotectedMountPolicy},
		{When: layered, Steps: b.moveLayersSteps},
		{When: layered, Steps: one(b.rewriteFstab)},
		{When: degraded, Steps: one(b.guardDegradedFstab)},
		{When: func() bool { return sandbox() && degraded() }, Steps: one(b.degradedSandboxRun)}, // sandbox_linux.go

		// The hand-over: the status written, then switch_root and exec
		// of the real init, or the init stays PID 1 as the sandbox's
		// supervisor (sandbox_linux.go). Neither returns when it works,
		// so neither is in the status's steps, written just before.
		{When: not(sandbox), Steps: one(func() Step {
			return Step{Name: fmt.Sprintf("switch_root %s and exec its init", b.newRoot), Do: b.handOver}
		})},
		{When: sandbox, Steps: one(func() Step {
			return Step{Name: fmt.Sprintf("run the init of %s as PID 1 of new namespaces, supervised (overlayfs=sandbox)", b.newRoot), Do: b.sandboxHandOver}
		})},
	}...)
}

// layerSteps build the writable layer and the overlay over the real root,
// mounted read-only at b.paths.ro. The layer is on the device ofs-upper=
// names, else (or when that device or the overlay over it cannot be
// used: deviceFallback) in RAM. An overlay that cannot be built over RAM
// either leaves the real root read-only (degrade): never writable.
func (b *boot) layerSteps() []Step {
	b.overlayAgain = false
	return []Step{
		{When: func() bool { return b.cfg.Upper.Kind == cmdline.UpperDevice }, Steps: b.deviceLayerSteps, OnError: b.deviceFallback}, // upper_device_linux.go
		{Steps: b.overlaySteps, OnError: b.overlayFailed},
		{When: func() bool { return b.overlayAgain }, Steps: b.overlaySteps, OnError: b.degrade},
	}
}

// overlayFailed takes the overlay's failure: over a persistent layer,
// that layer is given up and the overlay is built again over RAM (the
// next entry of layerSteps); over RAM, the boot is degraded.
func (b *boot) overlayFailed(err error) error {
	if b.layer != nil {
		b.overlayAgain = true
		return b.deviceFallback(fmt.Errorf("the overlay over it: %w", err))
	}
	return b.degrade(err)
}

// plainRoot mounts the real root as the new root, read-only unless rw:
// the boot is plain (overlayfs=no).
func (b *boot) plainRoot() Step {
	s := b.mountRealRoot(b.paths.newRoot, !b.cfg.ReadWrite)
	mount := s.Do
	s.Do = func() error {
		b.status.Mode = bootstatus.Plain
		b.newRoot = b.paths.newRoot
		return mount()
	}
	return s
}

// closing is s with after run when s ends, whatever its outcome.
func closing(s Step, after func()) Step {
	do := s.Do
	s.Do = func() error {
		defer after()
		return do()
	}
	return s
}

func not(f func() bool) func() bool { return func() bool { return !f() } }

// earlyMounts are the kernel filesystems the init and its tools need.
func (b *boot) earlyMounts() []Step {
	m := func(src, dir, fstype string, flags uintptr, data string) Step {
		name := fmt.Sprintf("mount -t %s", fstype)
		if opts := append(mountfs.FlagNames(flags), nonEmpty(data)...); len(opts) > 0 {
			name += " -o " + strings.Join(opts, ",")
		}
		return Step{Name: fmt.Sprintf("%s %s %s", name, src, dir), Do: func() error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			err := mountfs.Mount(src, dir, fstype, flags, data)
			if errors.Is(err, unix.EBUSY) {
				return nil // the kernel mounted it already (CONFIG_DEVTMPFS_MOUNT)
			}
			return err
		}}
	}
	return []Step{
		m("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""),
		m("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""),
		m("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"),
		m("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"),
	}
}

// readCommandLine reads and parses /proc/cmdline; what cannot be read or
// parsed is said and the defaults stand in: it never fails.
func (b *boot) readCommandLine() error {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		b.log.Warnf("reading /proc/cmdline: %v; using the defaults", err)
	}
	line := strings.TrimSpace(string(data))
	b.status.Cmdline = line
	cfg, warns := cmdline.Parse(line)
	for _, w := range warns {
		b.log.Warnf("%s", w)
		b.status.Warnings = append(b.status.Warnings, w.String())
	}
	b.cfg = cfg
	b.status.Requested = cfg.Overlay.String()
	if cfg.OverlayWord != "" {
		b.status.Requested = cfg.OverlayWord
	}
	b.status.Root.Spec = cfg.Root
	b.log.Infof("overlay %s, ram layer %s, root %q, rescue %s after %s",
		cfg.Overlay, cfg.Size, cfg.Root, cfg.Rescue, cfg.RescueDelay)
	if cfg.OverlayUnknown {
		b.log.Loudf("overlayfs=%s is not a protection word this init knows (yes/no, on/off, true/false, 1/0, sandbox).\nFailing closed: the root is PROTECTED (overlayfs=yes)%s. Fix the word to change it.", cfg.OverlayWord, map[bool]string{true: " and rw is ignored", false: ""}[cfg.ReadWrite])
	}
	b.logAlias() // mountpolicy_linux.go
	if cfg.Overlay.Protected() && cfg.ReadWrite {
		b.log.Warnf("rw ignored: with overlayfs=yes the real root is always mounted read-only")
	}
	return nil
}

func (b *boot) loadModules() Step {
	return Step{Name: "modprobe (modules listed in " + modload.OrderFile + ", but the root filesystem's and overlay)", Optional: true, Do: func() error {
		// Opened first, so that no device event of the disk driver
		// loaded below is missed by the root search.
		b.openUevents()
		if err := b.readModuleOrder(); err != nil {
			return err
		}
		return b.loadEntries(func(e modload.Entry) bool { return !afterRoot(e) }) // modules_linux.go
	}}
}

// findRoot waits for the root device as rootdelay=, rootwait say.
func (b *boot) findRoot() Step {
	spec := b.cfg.Root
	return Step{Name: fmt.Sprintf("find root device %q", spec), Do: func() error {
		if spec == "" {
			devs, _ := blockdev.Scan("/sys", "/dev")
			return fmt.Errorf("no root= on the kernel command line; block devices seen: %s", blockdev.Summary(devs))
		}
		if b.cfg.RootDelay > 0 {
			b.log.Infof("rootdelay: waiting %s", b.cfg.RootDelay)
			time.Sleep(b.cfg.RootDelay)
		}
		limit := cmdline.DefaultDeviceWait
		if b.cfg.RootWait {
			limit = b.cfg.RootWaitTimeout // 0: for ever
		}
		// seen lists every block device, for the messages.
		seen := func() string {
			devs, _ := blockdev.Scan("/sys", "/dev")
			return blockdev.Summary(devs)
		}
		start := monotonic()
		lastSay := start
		for {
			// Only the devices spec can name are probed, when it names
			// one (blockdev.ScanFor); messages list every device.
			devs, err := blockdev.ScanFor("/sys", "/dev", spec)
			if err == nil {
				d, rerr := blockdev.Resolve(spec, devs)
				if rerr == nil {
					b.root = d
					b.status.Root.Device = d.Path
					b.status.Root.UUID, b.status.Root.Label = d.UUID, d.Label
					b.log.Infof("root %q is %s (%s)", spec, d.Path, blockdev.Summary([]blockdev.Device{d}))
					return nil
				}
				if !errors.Is(rerr, blockdev.ErrNotFound) {
					return rerr // ambiguous: waiting will not help
				}
			}
			waited := monotonic() - start
			if limit > 0 && waited >= limit {
				how := "without rootwait"
				if b.cfg.RootWait {
					how = "rootwait=" + fmt.Sprint(int(limit.Seconds()))
				}
				return fmt.Errorf("root device %q not found after %.1f s (%s); block devices seen: %s",
					spec, waited.Seconds(), how, seen())
			}
			if monotonic()-lastSay >= 5*time.Second {
				lastSay = monotonic()
				b.log.Infof("waiting for root device %q (%.0f s so far); seen: %s", spec, waited.Seconds(), seen())
			}
			b.waitDevice(50 * time.Millisecond)
		}
	}}
}

// fsTypes lists the types to try for the root: rootfstype=, else what
// the device's superblock says (ext2/ext3 also by the ext4 driver), else
// every block filesystem the kernel has.
func (b *boot) fsTypes() []string {
	if len(b.cfg.RootFSType) > 0 {
		return b.cfg.RootFSType
	}
	switch t := b.root.FSType; t {
	case "ext2", "ext3":
		return []string{t, "ext4"}
	case "":
	default:
		return []string{t}
	}
	data, _ := os.ReadFile("/proc/filesystems")
	all, nodev := mountfs.Filesystems(string(data))
	var types []string
	for _, t := range all {
		if !nodev[t] {
			types = append(types, t)
		}
	}
	return types
}

func (b *boot) mountRealRoot(dir string, readOnly bool) Step {
	flags, data := mountfs.ParseOptions(b.cfg.RootFlags)
	if b.noLoad {
		// The journal needs recovery and the device must not be
		// written: mount what is on the disk, without replaying it.
		data = strings.Join(append(nonEmpty(data), "noload"), ",")
	}
	if b.errorsContinue {
		data = strings.Join(append(nonEmpty(data), "errors=continue"), ",")
	}
	if readOnly {
		flags |= unix.MS_RDONLY
	} else {
		flags &^= unix.MS_RDONLY
	}
	types := b.fsTypes()
	opts := append(mountfs.FlagNames(flags), nonEmpty(data)...)
	if len(opts) == 0 {
		opts = []string{"rw"}
	}
	name := fmt.Sprintf("mount -t %s -o %s %s %s", strings.Join(types, ","), strings.Join(opts, ","), b.root.Path, dir)
	return Step{Name: name, Do: func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if len(types) == 0 {
			return fmt.Errorf("filesystem on %s unknown and the kernel lists no block filesystems", b.root.Path)
		}
		var errs []string
		for _, t := range types {
			err := mountfs.Mount(b.root.Path, dir, t, flags, data)
			if err == nil {
				b.fstype = t
				b.status.Root.FSType = t
				b.status.Root.Options = strings.Join(opts, ",")
				b.status.Root.Mount = "/"
				if b.cfg.Overlay.Protected() {
					b.status.Root.Mount = bootstatus.ReadOnlyLayer
				}
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("cannot mount the root %s (filesystem on it: %q; tried %s): %s",
			b.root.Path, b.root.FSType, strings.Join(types, ", "), strings.Join(errs, "; "))
	}}
}

// overlaySteps build the RAM layer and the overlay, over the persistent
// layer's folders instead when there is one. Any failure here leaves the
// real root read-only: layerSteps degrades.
func (b *boot) overlaySteps() []Step {
	upper, work, onDevice := b.upperPaths() // upper_device_linux.go
	ovlData := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", b.paths.ro, upper, work)
	steps := []Step{
		{Name: "read MemTotal from /proc/meminfo", Do: func() error {
			mem, err := memTotal()
			b.memTotal = mem
			if err != nil {
				return err
			}
			b.ramBytes = b.ramSize(mem) // protect_linux.go: capped below MemTotal
			return nil
		}},
		{Steps: one(b.ramLayer)}, // its size is read by the step before
		{Name: fmt.Sprintf("mkdir %s %s", upper, work), Do: func() error {
			if err := os.Mkdir(upper, 0o755); err != nil {
				return err
			}
			return os.Mkdir(work, 0o755)
		}},
		{Name: fmt.Sprintf("mount -t overlay -o %s %s %s", ovlData, bootstatus.OverlayName, b.paths.newRoot), Do: func() error {
			if !mountfs.KernelHas("overlay") && !b.overlayFromRoot() { // stale_linux.go
				return fmt.Errorf("the kernel has no overlay filesystem (module overlay missing or failed to load)")
			}
			if err := os.MkdirAll(b.paths.newRoot, 0o755); err != nil {
				return err
			}
			if err := mountfs.Mount(bootstatus.OverlayName, b.paths.newRoot, "overlay", 0, ovlData); err != nil {
				return err
			}
			b.newRoot = b.paths.newRoot
			b.status.Mode = bootstatus.Protected
			if b.status.Upper == nil || b.status.Upper.Kind == bootstatus.UpperRAM {
				b.status.RAM = &bootstatus.RAM{Mount: bootstatus.WritableLayer, SizeBytes: b.ramBytes, Percent: b.cfg.Size.Percent, MemTotal: b.memTotal}
				if b.cfg.Size.Bytes != 0 {
					b.status.RAM.Percent = 0
				}
			}
			b.status.Overlay = &bootstatus.Overlay{Lower: bootstatus.ReadOnlyLayer, Upper: bootstatus.WritableLayer + "/upper", Work: bootstatus.WritableLayer + "/work"}
			if onDevice {
				b.deviceOverlayStatus() // upper_device_linux.go
			}
			return nil
		}},
	}
	if onDevice {
		// The RAM layer and its folders: the device layer is mounted
		// and made by deviceLayerSteps instead.
		steps = slices.Delete(steps, 1, 3)
	}
	return steps
}

// ramLayer mounts the RAM layer at b.paths.rw: a tmpfs of the size
// ofs-size asks for (capped: ramSize), or a zram disk of it
// (ofs-upper=zram), the tmpfs standing in when that fails.
func (b *boot) ramLayer() Step {
	tmpfsData := fmt.Sprintf("size=%d,mode=0755", b.ramBytes)
	layer := Step{Name: fmt.Sprintf("mount -t tmpfs -o %s %s %s", tmpfsData, bootstatus.TmpfsName, b.paths.rw), Do: func() error {
		if err := os.MkdirAll(b.paths.rw, 0o755); err != nil {
			return err
		}
		return mountfs.Mount(bootstatus.TmpfsName, b.paths.rw, "tmpfs", 0, tmpfsData)
	}}
	if b.cfg.Upper.Kind == cmdline.UpperZram {
		layer = b.zramLayer(b.memTotal, b.ramBytes, layer) // upper_zram_linux.go
	}
	return layer
}

// degrade is fail-closed: the overlay could not be built, so the real
// root, already mounted read-only, becomes / as it is. The boot goes on
// (nil).
func (b *boot) degrade(err error) error {
	b.status.Mode = bootstatus.Degraded
	reason := fmt.Sprintf("overlay could not be built: %v", err)
	b.status.Reasons = append(b.status.Reasons, reason)
	b.status.RAM, b.status.Overlay, b.status.Upper = nil, nil, nil
	b.log.Loudf("DEGRADED: %s\nBooting the real root READ-ONLY, WITHOUT a RAM overlay: writes to / will fail.\nThe device is NOT being written; fix the initramfs (is overlay.ko in it?) to get a writable protected root.", reason)
	// Undo what was half built; a failure here changes nothing for the
	// boot.
	mountfs.Unmount(b.paths.newRoot, unix.MNT_DETACH)
	mountfs.Unmount(b.paths.rw, unix.MNT_DETACH)
	b.newRoot = b.paths.ro
	b.status.Root.Mount = "/"
	return nil
}

// moveLayersSteps put both layers where the seed's layout has them,
// inside the new root. The folders are made in the overlay, so in RAM.
func (b *boot) moveLayersSteps() []Step {
	var steps []Step
	for _, l := range [][2]string{{b.paths.ro, bootstatus.ReadOnlyLayer}, {b.paths.rw, bootstatus.WritableLayer}} {
		layer, dst := l[0], filepath.Join(b.paths.newRoot, l[1])
		steps = append(steps, Step{Name: fmt.Sprintf("mount --move %s %s", layer, dst), Optional: true, Do: func() error {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			return mountfs.Move(layer, dst)
		}})
	}
	return steps
}

// rewriteFstab writes the new root's /etc/fstab: through the overlay,
// so into the RAM layer only.
func (b *boot) rewriteFstab() Step {
	path := filepath.Join(b.paths.newRoot, "etc/fstab")
	return Step{Name: "rewrite " + path + " (in the RAM layer)", Optional: true, Do: func() error {
		// Read inside the new root; a bad one (FIFO, device, huge)
		// is replaced like a missing one.
		orig, err := b.readRootFile(b.paths.newRoot, "/etc/fstab", fstabLimit)
		if orig == nil && err == nil {
			b.log.Infof("the real root has no /etc/fstab; writing one")
		}
		spec := b.cfg.Root
		if spec == "" {
			spec = b.root.Path
		}
		out, warns := fstab.Rewrite(orig, fstab.RealRoot{Spec: spec, VfsType: b.fstype, Mount: bootstatus.ReadOnlyLayer, Options: b.status.Root.Options})
		for _, w := range warns {
			b.log.Warnf("%s", w)
			b.status.Warnings = append(b.status.Warnings, w)
		}
		out = b.applyMountPolicy(out) // mountpolicy_linux.go
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return writeFileAtomic(b.paths.newRoot, "etc/fstab", out, 0o644)
	}}
}

// guardDegradedFstab: in a degraded boot the real root's own fstab is
// the one the real init reads, and its "/" entry usually says rw, which
// would make the real init remount the root read-write. A copy with "/"
// forced to ro, kept on /run (RAM), is bind-mounted over it.
func (b *boot) guardDegradedFstab() Step {
	path := filepath.Join(b.paths.ro, "etc/fstab")
	copyPath := filepath.Join(b.paths.run, "ofsroot/fstab")
	return Step{Name: fmt.Sprintf("mount --bind %s %s (root forced ro)", copyPath, path), Optional: true, Do: func() error {
		orig, err := b.readRootFile(b.paths.ro, "/etc/fstab", fstabLimit)
		var out []byte
		switch {
		case err != nil:
			// The real init would trip over it too (a FIFO hangs it):
			// shadow it with an empty one.
			out = refusedFstab(err)
		case orig == nil:
			return nil // nothing will remount it
		default:
			var changed bool
			if out, changed = fstab.ForceRootReadOnly(orig); !changed {
				return nil
			}
		}
		if err := os.MkdirAll(filepath.Dir(copyPath), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(copyPath, out, 0o644); err != nil {
			return err
		}
		// The file the real init will read: /etc/fstab's links
		// followed inside the root, not in the initramfs.
		target, err := rootfile.ResolveIn(b.paths.ro, "/etc/fstab")
		if err != nil {
			return err
		}
		return mountfs.Mount(copyPath, target, "", unix.MS_BIND, "")
	}}
}

// handOver writes the status, switches root and execs the real init.
func (b *boot) handOver() error {
	b.markDegradedUpper() // upper_device_linux.go: the layers are in place
	init, err := b.realInit()
	if err != nil {
		return err
	}
	// The kernel gave this process exactly the arguments and environment
	// it gives an init: words after "--" and unknown words without "=" as
	// arguments, unknown key=value words as environment. They go on
	// unchanged.
	args, env := os.Args[1:], os.Environ()
	b.gcOn = nil // exec follows: turning the collector back on would only start a collection (modules_linux.go)
	b.recordHandover(init, args)
	b.log.Infof("switching to %s", init)
	if err := switchroot.Switch(b.newRoot, []string{"/dev", "/proc", "/sys", "/run"}, b.log.Warnf); err != nil {
		return fmt.Errorf("switch_root to %s: %w", b.newRoot, err)
	}
	return switchroot.Exec(init, args, env)
}

// realInit finds the init to hand over to in the new root: init=, or the
// first of the kernel's defaults.
func (b *boot) realInit() (string, error) {
	candidates := switchroot.DefaultInits
	if b.cfg.Init != "" {
		candidates = []string{b.cfg.Init}
	}
	init, err := switchroot.FindInitIn(b.newRoot, candidates)
	if err != nil {
		return "", fmt.Errorf("root %s has no init: %w", b.root.Path, err)
	}
	return init, nil
}

// recordHandover completes the status record and writes it to the status
// folder on /run, which it returns with whether the write worked.
func (b *boot) recordHandover(init string, args []string) (statusDir string, written bool) {
	if b.gcOn != nil {
		b.gcOn()
	}
	b.status.Init, b.status.InitArgs = init, args
	b.status.Steps = b.x.Steps
	b.status.HandoverAt = monotonic().Seconds()
	statusDir = filepath.Join(b.paths.run, "ofsroot")
	err := bootstatus.WriteFile(filepath.Join(statusDir, StatusFileName), &b.status)
	if err != nil {
		b.log.Warnf("writing the status file: %v", err)
	}
	b.log.Infof("mode %s; stage took %.3f s", b.status.Mode, b.status.HandoverAt-b.status.StartedAt)
	return statusDir, err == nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func memTotal() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return ParseMemTotal(string(data))
}

func monotonic() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// writeFileAtomic replaces name inside the root at root (making its
// folder), by atomicfile.WriteFileIn. The root's files are hostile input
// (see package rootfile): the write is confined to it, so that no link
// of the root (etc -> /dev, say) leads it out, and its temporary file is
// created exclusively under a random name, never through a planted link
// or device node (the fixed name etc/fstab.ofsroot-tmp of before was
// opened through one: a hostile root's link there to /dev/mmcblk0 had
// the fstab written onto the card under protection).
func writeFileAtomic(root, name string, data []byte, perm os.FileMode) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFileIn(r, name, data, perm)
}
