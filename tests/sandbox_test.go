package tests

import (
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

// sandboxBoot boots the board with words; unlike boot it expects the
// init to stay PID 1 as the supervisor rather than switch root.
func sandboxBoot(t *testing.T, boardName string, words ...string) *bootlab.Run {
	t.Helper()
	l := getLab(t, boardName)
	initrdPath, _ := l.initrd(t, variant{apparmor: true})
	img, root := l.setup.DefaultRoot()
	// QEMU must exit by itself: the supervisor reboots.
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: append([]string{root}, words...)})
	assertNot(t, run.Console, "the init panicked", "a panic recovered in the init")
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	return run
}

// TestSandboxBoot boots with overlayfs=sandbox: the root's init (the
// probe) runs as PID 1 of its own namespaces with its own hostname,
// cannot set the clock, mount, reboot or write sysrq-trigger; its first
// start exits with status 7 and the supervisor restarts it once, then
// reboots; the disk image is unchanged.
func TestSandboxBoot(t *testing.T) {
	t.Parallel()
	// ofs-sandbox-dev=: the second serial port's node is inside, as
	// the host's (char 4:65), and nothing else of the host's /dev.
	r := checkSandboxBoot(t, "qemu-x86_64", "ofs-sandbox-dev=ttyS1")
	if got := last(r, "sandbox.dev:/dev/ttyS1"); got != "c 4:65" {
		t.Errorf("the ofs-sandbox-dev= node /dev/ttyS1 inside: %s, want c 4:65", got)
	}
	if got := last(r, "sandbox.disk"); got != "ENOENT" {
		t.Errorf("the root disk's node inside: %s, want ENOENT", got)
	}
}

func last(r *bootlab.Report, k string) string {
	if vs := r.Values[k]; len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return "(missing)"
}

// TestSandboxBootARM is the same boot on the ARM boards the sandbox is
// meant for (QEMU's sabrelite machine, with each board's device tree),
// on Debian's armmp kernel, AppArmor profile included.
func TestSandboxBootARM(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"sabrelite", "nitrogen6x"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			checkSandboxBoot(t, b)
		})
	}
}

func checkSandboxBoot(t *testing.T, boardName string, words ...string) *bootlab.Report {
	words = append([]string{"overlayfs=sandbox", "ofs-size=20", "ofs-sandbox-hostname=fw1", "ofs-sandbox-restart=1", "probe.exit=7"}, words...)
	run := sandboxBoot(t, boardName, words...)
	r := run.Report
	v := func(k string) string { return last(r, k) }
	if r.PID != 1 {
		t.Errorf("the probe ran as PID %d, want 1 of its namespace", r.PID)
	}
	for k, want := range map[string]string{
		"sandbox.run":        "2", // the first start exited, the supervisor restarted it
		"sandbox.container":  "ofsroot",
		"sandbox.hostname":   "fw1",
		"sandbox.settime":    "EPERM",
		"sandbox.sysrq":      "EROFS",
		"sandbox.reboot":     "EPERM",
		"sandbox.nonewprivs": "1",
		"sandbox.chroot":     "contained",
		"sandbox.apparmor":   sandbox.DefaultProfile + " (enforce)",
		// The seccomp filter (no AppArmor needed): keyring, nested
		// user namespaces, clone3 and the rest.
		"sandbox.keyctl":  "EPERM",
		"sandbox.userns":  "EPERM",
		"sandbox.clone3":  "ENOSYS",
		"sandbox.seccomp": "2",
	} {
		if got := v(k); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	// AppArmor's deny mount answers EACCES before the missing
	// CAP_SYS_ADMIN would answer EPERM: either is a refusal.
	if got := v("sandbox.mount"); got != "EACCES" && got != "EPERM" {
		t.Errorf("sandbox.mount = %s, want EACCES (AppArmor) or EPERM (no CAP_SYS_ADMIN)", got)
	}
	if capEff, err := sandbox.ParseCapMask(v("sandbox.capeff")); err != nil {
		t.Errorf("sandbox.capeff: %v", err)
	} else {
		for c := range sandbox.Dropped {
			if capEff&(1<<uint(c)) != 0 {
				t.Errorf("the firmware has %s", sandbox.CapName(c))
			}
		}
	}
	// The supervisor: how the first run ended, the restart, the end.
	assertLine(t, run.Console, "ofsroot: sandbox: starting /sbin/init as PID 1 of new namespaces", "hostname fw1", "network private", "restart 1")
	assertLine(t, run.Console, "ofsroot: sandbox: the firmware (pid", "exited with status 7")
	assertHas(t, run.Console, "ofsroot: sandbox: restarting the firmware (restart 1 of 1)")
	assertLine(t, run.Console, "ofsroot: sandbox: the firmware (pid", "exited with status 0")
	assertHas(t, run.Console, "ofsroot: sandbox: no restart left")
	assertHas(t, run.Console, "ofsroot: error: sandbox: the firmware has ended (ofs-sandbox-restart=1); rebooting")
	assertLine(t, run.Console, "ofsroot: sandbox: AppArmor: loaded the compiled profile "+sandbox.DefaultProfile)
	assertNot(t, run.Console, "switching to /sbin/init", "a switch_root in sandbox mode")
	// Inside: an overlay as /, nothing of the host's layers or disk.
	if m, ok := r.MountAt("/"); !ok || m.FSType != "overlay" || m.ReadOnly() {
		t.Errorf("/ = %+v, want the rw overlay", m)
	}
	for _, p := range []string{"/mnt/root-RO", "/mnt/root-RW"} {
		if m, ok := r.MountAt(p); ok {
			t.Errorf("%s is visible in the sandbox: %+v", p, m)
		}
	}
	if m, ok := r.MountAt("/proc/sys"); !ok || !m.ReadOnly() {
		t.Errorf("/proc/sys = %+v, want read-only", m)
	}
	if m, ok := r.MountAt("/sys"); !ok || !m.ReadOnly() {
		t.Errorf("/sys = %+v, want read-only", m)
	}
	if m, ok := r.MountAt("/dev"); !ok || m.FSType != "tmpfs" {
		t.Errorf("/dev = %+v, want the sandbox's tmpfs", m)
	}
	if r.WriteRoot != "ok" {
		t.Errorf("writing / inside: %s, want ok (into the RAM layer)", r.WriteRoot)
	}
	if st := r.Status; st == nil {
		t.Errorf("no status record inside (/run/ofsroot bound read-only): %s", r.StatusError)
	} else if st.Mode != bootstatus.Sandbox || st.Requested != "sandbox" {
		t.Errorf("status mode %q requested %q, want sandbox", st.Mode, st.Requested)
	}
	assertImageUnchanged(t, run)
	t.Logf("sandbox boot on %s: probe started %s times, %.1f s of QEMU", boardName, v("sandbox.run"), run.Console.Duration.Seconds())
	return r
}
