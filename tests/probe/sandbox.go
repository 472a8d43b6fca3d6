package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runsFile counts the probe's starts in this boot; it is on the
// sandbox's overlay, so in RAM, and survives a restart by the supervisor.
const runsFile = "/probe-runs"

// sandboxed says whether the probe runs in the ofsroot sandbox: the
// supervisor sets container=ofsroot (systemd's convention).
func sandboxed() bool { return os.Getenv("container") != "" }

// sandboxChecks runs only in a sandbox. It counts this start, exits with
// N on the first start when the command line says probe.exit=N (so the
// boot test sees the supervisor restart it), and reports what a firmware
// may and may not do there:
//
//	PROBE sandbox.run=N        this start's number in this boot
//	PROBE sandbox.container=V  $container
//	PROBE sandbox.hostname=H   the UTS name
//	PROBE sandbox.settime=E    clock_settime to the current time (EPERM)
//	PROBE sandbox.sysrq=E      opening /proc/sysrq-trigger to write (EROFS)
//	PROBE sandbox.mount=E      mounting a tmpfs (EPERM)
//	PROBE sandbox.reboot=E     reboot(2) (EPERM)
//	PROBE sandbox.chroot=R     the classic chroot escape (chroot into a
//	                           folder, climb "..", chroot "."): "contained"
//	                           when it ends in the sandbox's own root,
//	                           "escaped" when the initramfs's /init shows
//	PROBE sandbox.capeff=HEX   /proc/self/status CapEff
//	PROBE sandbox.nonewprivs=N
//	PROBE sandbox.seccomp=N    /proc/self/status Seccomp (2: a filter)
//	PROBE sandbox.keyctl=E     keyctl(GET_KEYRING_ID, the user keyring) (EPERM)
//	PROBE sandbox.userns=E     unshare(CLONE_NEWUSER) (EPERM: the filter
//	                           answers before the kernel's EINVAL for a
//	                           threaded process)
//	PROBE sandbox.clone3=E     clone3 with size 0 (ENOSYS from the filter,
//	                           EINVAL from the kernel)
//	PROBE sandbox.dev:/dev/X=T each ofs-sandbox-dev= node inside: "c MAJ:MIN"
//	                           (or "b ..."), or why not
//	PROBE sandbox.disk=E       the root disk's node inside (ENOENT)
func sandboxChecks() {
	if !sandboxed() {
		return
	}
	n := 1
	if b, err := os.ReadFile(runsFile); err == nil {
		if m, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			n = m + 1
		}
	}
	os.WriteFile(runsFile, []byte(strconv.Itoa(n)), 0o644)
	report("sandbox.run", "%d", n)
	if b, err := os.ReadFile("/proc/cmdline"); err == nil && n == 1 {
		for _, w := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(w, "probe.exit="); ok {
				code, _ := strconv.Atoi(v)
				report("sandbox.exit", "%d", code)
				unix.Sync()
				os.Exit(code)
			}
		}
	}
	report("sandbox.container", "%s", os.Getenv("container"))
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		report("sandbox.hostname", "%s", unix.ByteSliceToString(uts.Nodename[:]))
	}
	// The AppArmor label the firmware runs under ("unconfined" if none).
	if b, err := os.ReadFile("/proc/self/attr/apparmor/current"); err == nil {
		report("sandbox.apparmor", "%s", strings.TrimSpace(string(b)))
	} else if b, err := os.ReadFile("/proc/self/attr/current"); err == nil {
		report("sandbox.apparmor", "%s", strings.TrimSpace(string(b)))
	} else {
		report("sandbox.apparmor", "error: %s", errText(err))
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	report("sandbox.settime", "%s", errText(unix.ClockSettime(unix.CLOCK_REALTIME, &ts)))
	f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
	if err == nil {
		f.Close() // opened, but nothing written
	}
	report("sandbox.sysrq", "%s", errText(err))
	os.MkdirAll("/mnt", 0o755)
	report("sandbox.mount", "%s", errText(unix.Mount("tmpfs", "/mnt", "tmpfs", 0, "")))
	// CAD_OFF changes nothing anywhere even if it were allowed; the
	// capability check comes first.
	report("sandbox.reboot", "%s", errText(unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)))
	report("sandbox.chroot", "%s", chrootEscape())
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, w := range strings.Fields(string(b)) {
			v, ok := strings.CutPrefix(w, "ofs-sandbox-dev=")
			if !ok {
				continue
			}
			for _, d := range strings.Split(v, ",") {
				p := "/dev/" + strings.TrimPrefix(d, "/dev/")
				report("sandbox.dev:"+p, "%s", nodeText(p))
			}
		}
		for _, w := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(w, "root=/dev/"); ok {
				report("sandbox.disk", "%s", nodeText("/dev/"+v))
			}
		}
	}
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_USER_KEYRING, 0, 0, 0)
	report("sandbox.keyctl", "%s", errText(err))
	report("sandbox.userns", "%s", errText(unix.Unshare(unix.CLONE_NEWUSER)))
	// clone3: the same number on every architecture.
	if _, _, e := unix.Syscall(435, 0, 0, 0); e != 0 {
		report("sandbox.clone3", "%s", errText(e))
	} else {
		report("sandbox.clone3", "ok")
	}
	if st, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(st)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "CapEff":
				report("sandbox.capeff", "%s", strings.TrimSpace(v))
			case "NoNewPrivs":
				report("sandbox.nonewprivs", "%s", strings.TrimSpace(v))
			case "Seccomp":
				report("sandbox.seccomp", "%s", strings.TrimSpace(v))
			}
		}
		st.Close()
	}
}

// chrootEscape tries the escape CAP_SYS_CHROOT allows: after chroot into
// a subfolder the working folder is outside the root, and ".." climbs
// up through the mounts. In a sandbox entered with pivot_root and the
// old root detached, the climb ends at the sandbox's own root.
func chrootEscape() string {
	const dir = "/.probe-chroot"
	os.Mkdir(dir, 0o755)
	defer os.Remove(dir)
	if err := unix.Chroot(dir); err != nil {
		return "chroot: " + errText(err)
	}
	for i := 0; i < 64; i++ {
		unix.Chdir("..")
	}
	unix.Chroot(".")
	unix.Chdir("/")
	if _, err := os.Lstat("/init"); err == nil {
		return "escaped: the initramfs's /init is reachable"
	}
	if _, err := os.Lstat("/sbin/init"); err != nil {
		return "lost: neither the sandbox's root nor the initramfs"
	}
	return "contained"
}

// nodeText describes device node p: "c 4:65", or the error.
func nodeText(p string) string {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return errText(err)
	}
	kind := "c"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		kind = "b"
	case unix.S_IFCHR:
	default:
		return "not a device node"
	}
	return fmt.Sprintf("%s %d:%d", kind, unix.Major(st.Rdev), unix.Minor(st.Rdev))
}
