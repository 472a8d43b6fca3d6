package bootinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/rootfile"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

// SandboxRestartDelay is the pause before the supervisor restarts the
// firmware, so that a firmware that dies at once does not spin.
const SandboxRestartDelay = time.Second

// sandboxConfig turns the command line into the sandbox's settings for
// the root at root running init.
func sandboxConfig(cfg cmdline.Config, root, init string, args, env []string) sandbox.Config {
	host := cfg.SandboxHostname
	if host == "" {
		host = hostnameOf(root)
	}
	c := sandbox.Config{
		Root:     root,
		Init:     init,
		Args:     args,
		Env:      env,
		Hostname: host,
		Net:      sandbox.Net(cfg.SandboxNet),
		Devices:  cfg.SandboxDevices,
		Console:  "/dev/console",
	}
	return c
}

// hostnameOf reads root's /etc/hostname (inside root, capped: package
// rootfile), else DefaultHostname.
func hostnameOf(root string) string {
	b, err := rootfile.ReadFile(root, "/etc/hostname", hostnameLimit)
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 && len(f[0]) <= 64 {
			return f[0]
		}
	}
	return sandbox.DefaultHostname
}

// sandboxHandOver is handOver for overlayfs=sandbox: instead of
// switching root, the init stays PID 1 in the initramfs, as a supervisor,
// and runs the root's init as PID 1 of new namespaces (package sandbox).
// When the firmware has ended and ofs-sandbox-restart allows no more
// restarts, it reboots (or halts, with ofs-rescue=halt). It never
// returns unless the root has no init.
func (b *boot) sandboxHandOver() error {
	b.markDegradedUpper() // upper_device_linux.go: the layers are in place
	init, err := b.realInit()
	if err != nil {
		return err
	}
	args, env := os.Args[1:], os.Environ()
	sc := sandboxConfig(b.cfg, b.newRoot, init, args, env)
	if b.status.Mode == bootstatus.Protected {
		b.status.Mode = bootstatus.Sandbox
	} else {
		// Degraded: the read-only real root, sandboxed all the same
		// (its /run in RAM: degradedSandboxRun, run before).
		b.log.Warnf("sandbox: the overlay could not be built; the firmware runs on the READ-ONLY real root")
	}
	plan := sandbox.PrepareAppArmor(sandbox.DefaultProfile)
	b.log.Infof("sandbox: %s", plan.Note)
	sc.AppArmorProfile = plan.Label
	if plan.Label == "" {
		b.status.Warnings = append(b.status.Warnings, plan.Note)
	}
	if statusDir, written := b.recordHandover(init, args); written {
		// The status record, read-only: ofsctl status works inside.
		sc.Binds = append(sc.Binds, sandbox.Bind{Source: statusDir, Target: "/run/ofsroot", ReadOnly: true})
	}
	restarts := sandbox.Restarts(b.cfg.SandboxRestarts)
	b.log.Infof("sandbox: starting %s as PID 1 of new namespaces (hostname %s, network %s, restart %s)", init, sc.Hostname, sc.Net, restarts)
	sup := &sandbox.Supervisor{
		Start: func() (int, error) {
			p, err := sandbox.Start(sc, os.Stdin, os.Stdout, os.Stderr)
			if err != nil {
				return 0, err
			}
			// The supervisor waits with wait4 by PID; the handle
			// (a pidfd) is not needed.
			pid := p.Pid
			p.Release()
			return pid, nil
		},
		Wait:     sandbox.ReapAll,
		Restarts: restarts,
		Delay:    SandboxRestartDelay,
		Logf:     b.log.Infof,
	}
	endings := sup.Run()
	unix.Sync()
	if b.status.Mode == bootstatus.Degraded && len(endings) == 1 && (endings[0].Err != nil || sandbox.IsChildFailure(endings[0].Status)) {
		// A reboot comes back to the same degraded root and fails the
		// same way: a boot loop. Stop once, and say why.
		b.log.Loudf("DEGRADED: the sandbox could not be set up on the read-only root (%s).\nHalting instead of rebooting: a reboot would fail the same way, for ever.\nFix the initramfs (is overlay.ko in it?), or boot once with overlayfs=yes.", endings[0])
		unix.Reboot(rebootCmd(unix.LINUX_REBOOT_CMD_HALT))
		for {
			time.Sleep(time.Hour)
		}
	}
	if b.cfg.Rescue == cmdline.RescueHalt {
		b.log.Errorf("sandbox: the firmware has ended (ofs-sandbox-restart=%s); halting (ofs-rescue=halt)", restarts)
		unix.Reboot(rebootCmd(unix.LINUX_REBOOT_CMD_HALT))
	} else {
		b.log.Errorf("sandbox: the firmware has ended (ofs-sandbox-restart=%s); rebooting", restarts)
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	for {
		b.log.Errorf("sandbox: the kernel refused to reboot; waiting")
		time.Sleep(time.Hour)
	}
}

// degradedSandboxRun gives a degraded sandbox a RAM /run: the read-only
// root cannot take the mount points the sandbox makes there (/run/ofsroot
// for the status record), and mounting on it writes nothing.
func (b *boot) degradedSandboxRun() Step {
	dir := filepath.Join(b.newRoot, "run")
	return Step{Name: fmt.Sprintf("mount -t tmpfs -o mode=0755,size=1m ofsroot-run %s (mount points for the sandbox, in RAM)", dir), Optional: true, Do: func() error {
		return mountfs.Mount("ofsroot-run", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m")
	}}
}
