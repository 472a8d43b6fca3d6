package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

// outside runs the escape helper on the host, as the test (root, in the
// test's private mount namespace, no sandbox): the control that shows an
// attempt works when nothing stops it, so that a refusal inside means
// something.
func outside(t *testing.T, actions ...string) results {
	t.Helper()
	cmd := exec.Command(escapeHelper(t), actions...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("escape helper outside: %v\n%s", err, out)
	}
	r := results{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ESCAPE "); ok {
			k, v, _ := strings.Cut(rest, "=")
			r[k] = append(r[k], v)
		}
	}
	return r
}

// refusedCalls are tried by number with harmless arguments. vhangup is
// left out: outside, it would hang up the test's terminal.
func refusedCalls() []string {
	var out []string
	for name := range Denied {
		if name == "vhangup" {
			continue
		}
		if _, ok := SyscallNumber(runtime.GOARCH, name); ok {
			out = append(out, name)
		}
	}
	return out
}

// v1Controller is a cgroup v1 hierarchy this host has ("" for none:
// then the nested-namespace attack mounts cgroup2).
func v1Controller(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] != "" && !strings.HasPrefix(parts[1], "name=") {
			return strings.Split(parts[1], ",")[0]
		}
	}
	return ""
}

// cgroupPathOf is where "mkdir NAME" in a fresh mount of the hierarchy
// of ctl (cgroup2 when "") inside a new cgroup namespace lands on the
// host: under the test's own cgroup there.
func cgroupPathOf(t *testing.T, ctl, name string) string {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	self, _ := os.ReadFile("/proc/self/cgroup")
	own := ownCgroups(string(self))
	for _, m := range cgroupMounts(string(mi)) {
		if (ctl == "" && m.v2) || (ctl != "" && contains(m.opts, ctl)) {
			return filepath.Join(m.point, strings.TrimPrefix(own[ctl], m.root), name)
		}
	}
	t.Fatalf("no mount of the cgroup hierarchy %q", ctl)
	return ""
}

// TestSeccompAndNamespaceEscapes is the escape suite for what only the
// seccomp filter and the closed descriptors stop (no AppArmor needed):
// each attempt is made once on the host, where it must work (or reach
// the kernel), and once as the sandbox's init, where it must be refused,
// and the host must be as it was.
func TestSeccompAndNamespaceEscapes(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	lower := makeLower(t)
	before := hashTree(t, lower)
	l := overlay(t, lower)

	// A secret of the host root's user keyring.
	secret := fmt.Sprintf("ofsroot-escape-%d", os.Getpid())
	keyID, err := unix.AddKey("user", secret, []byte("host secret"), unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		t.Fatalf("add_key on the host: %v", err)
	}
	t.Cleanup(func() { unix.KeyctlInt(unix.KEYCTL_UNLINK, keyID, unix.KEY_SPEC_USER_KEYRING, 0, 0) })
	unlinkAdded := func() {
		if id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", "ofsroot-escape-added", 0); err == nil {
			unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		}
	}
	t.Cleanup(unlinkAdded)

	// A host file, and a descriptor to its folder left open without
	// close-on-exec, as `exec 7</dir` in the caller's shell does.
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "shadow"), []byte("host only"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(hostDir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	viaFD := fmt.Sprintf("/proc/self/fd/%d/shadow", fd)
	viaRoot := fmt.Sprintf("/proc/%d/root%s/shadow", os.Getpid(), hostDir)

	ctl := v1Controller(t)
	cgName := fmt.Sprintf("ofsroot-escape-%d", os.Getpid())
	hostCgroup := cgroupPathOf(t, ctl, cgName)
	t.Cleanup(func() { unix.Rmdir(hostCgroup) })

	// Mount table and clock checks below.
	hostname, _ := os.Hostname()
	sysFile := "/sys/class/net/lo/mtu"
	mtu, err := os.ReadFile(sysFile)
	if err != nil {
		t.Fatal(err)
	}
	node := fmt.Sprintf("/tmp/ofsroot-escape-null-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(node) })
	calls := refusedCalls()
	actions := []string{
		"key-search=" + secret, "key-add", "read=" + viaFD, "read=" + viaRoot,
		"userns=mount-tmpfs,cgroup1=" + ctl + ":" + cgName, "clone3",
		"mknod-null=" + node, "write=" + sysFile + ":" + strings.TrimSpace(string(mtu)),
		"write=/proc/sys/kernel/hostname:" + hostname,
	}
	for _, c := range calls {
		actions = append(actions, "syscall="+c)
	}

	// The control: on the host every attempt works or reaches the
	// kernel.
	o := outside(t, actions...)
	unlinkAdded()
	for k, want := range map[string]string{
		"key-search": `"host secret"`, "key-add": "ok", "read:" + viaFD: `"host only"`,
		"read:" + viaRoot: `"host only"`, "mount-tmpfs": "ok", "cgroup1": "ok", "userns": "ok",
		"clone3": "EINVAL", "mknod-null": "ok", "write:" + sysFile: "ok",
		"write:/proc/sys/kernel/hostname": "ok",
	} {
		if got := o.one(k); got != want {
			t.Errorf("control: %s outside the sandbox = %s, want %s (the attack must work outside for the test to mean anything)", k, got, want)
		}
	}
	if _, err := os.Stat(hostCgroup); err != nil {
		t.Errorf("control: the nested user namespace did not create %s on the host: %v", hostCgroup, err)
	}
	unix.Rmdir(hostCgroup)
	for _, c := range calls {
		if got := o.one("syscall:" + c); got == "EPERM" || got == "(missing)" {
			t.Errorf("control: %s outside the sandbox = %s, want it to reach the kernel", c, got)
		}
	}

	// Inside.
	r := run(t, Config{Root: l.merged, Hostname: "fw-test", Net: NetPrivate}, actions...)
	for k, want := range map[string]string{
		"key-search": "EPERM", "key-add": "EPERM", "read:" + viaFD: "ENOENT", "read:" + viaRoot: "ENOENT",
		"userns": "EPERM", "clone3": "ENOSYS", "mknod-null": "EPERM",
		"write:" + sysFile: "EROFS", "write:/proc/sys/kernel/hostname": "EROFS",
	} {
		if got := r.one(k); !strings.HasSuffix(got, want) {
			t.Errorf("inside: %s = %s, want %s", k, got, want)
		}
	}
	if got := r.one("mount-tmpfs"); got != "(missing)" {
		t.Errorf("inside: the nested user namespace ran (mount-tmpfs %s)", got)
	}
	for _, c := range calls {
		if got := r.one("syscall:" + c); got != "EPERM" {
			t.Errorf("inside: %s = %s, want EPERM from the seccomp filter", c, got)
		}
	}
	// The host as it was.
	if _, err := os.Stat(hostCgroup); err == nil {
		t.Errorf("the sandbox created the host cgroup %s", hostCgroup)
	}
	if _, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", "ofsroot-escape-added", 0); err == nil {
		t.Errorf("the sandbox added a key to the host root's keyring")
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("host name changed from %q to %q", hostname, h)
	}
	if got := hashTree(t, lower); got != before {
		t.Errorf("the firmware (lower layer) changed")
	}
}

// TestFilterTables checks the filter's system call numbers against
// golang.org/x/sys/unix's tables for each architecture (read from the
// module's source: one build has only its own), so that a wrong number
// cannot leave a call open on the ARM boards.
func TestFilterTables(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("go list -m golang.org/x/sys: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	names := append([]string{}, argFiltered...)
	names = append(names, enosys...)
	for n := range Denied {
		names = append(names, n)
	}
	for arch := range syscallNumbers {
		src, err := os.ReadFile(filepath.Join(dir, "unix", "zsysnum_linux_"+arch+".go"))
		if err != nil {
			t.Fatal(err)
		}
		table := map[string]string{}
		for _, line := range strings.Split(string(src), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[1] == "=" && strings.HasPrefix(f[0], "SYS_") {
				table[strings.ToLower(strings.TrimPrefix(f[0], "SYS_"))] = f[2]
			}
		}
		for _, n := range names {
			want, has := table[n]
			got, ok := SyscallNumber(arch, n)
			switch {
			case has && !ok:
				t.Errorf("%s: %s (%s) is missing from the filter's table", arch, n, want)
			case ok && !has:
				t.Errorf("%s: the filter has %s = %d, which x/sys does not know", arch, n, got)
			case ok && fmt.Sprint(got) != want:
				t.Errorf("%s: %s = %d, x/sys says %s", arch, n, got, want)
			}
		}
	}
	for _, a := range []string{"amd64", "386", "arm", "arm64"} {
		prog, err := BuildFilter(a)
		if err != nil {
			t.Errorf("BuildFilter(%s): %v", a, err)
			continue
		}
		if len(prog) > 4096 {
			t.Errorf("BuildFilter(%s): %d instructions", a, len(prog))
		}
	}
}

// idmappedOverlay makes an overlay of lower whose layers are idmapped to
// m, as the desktop runner does, and opens the path to it to m's root.
func idmappedOverlay(t *testing.T, lower string, m IDMap) layers {
	t.Helper()
	dir := t.TempDir()
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o711)
	}
	rw := filepath.Join(dir, "rw")
	l := layers{lower: lower, upper: filepath.Join(rw, "upper"), merged: filepath.Join(dir, "merged")}
	idLower, idRW := filepath.Join(dir, "idlower"), filepath.Join(dir, "idrw")
	for _, d := range []string{l.upper, filepath.Join(rw, "work"), l.merged, idLower, idRW} {
		os.MkdirAll(d, 0o755)
	}
	if err := IDMapped(lower, idLower, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(idLower, unix.MNT_DETACH) })
	if err := IDMapped(rw, idRW, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(idRW, unix.MNT_DETACH) })
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", idLower, filepath.Join(idRW, "upper"), filepath.Join(idRW, "work"))
	if err := MountOverlayAs(m, "overlay", l.merged, unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		t.Fatalf("mount overlay on idmapped layers: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(l.merged, unix.MNT_DETACH) })
	return l
}

// TestUserNamespace: with a user namespace, the firmware's root is uid
// 0 inside and an unprivileged uid outside; it owns its root-owned
// files (idmapped layers), sets its own hostname, and what it writes is
// stored as root's on the layer; host root's keyring is not its.
func TestUserNamespace(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	lower := makeLower(t)
	m := IDMap{Host: 1 << 20, Count: DefaultIDCount}
	l := idmappedOverlay(t, lower, m)
	r := run(t, Config{Root: l.merged, Hostname: "fw-test", UserNS: &m},
		"euid", "read=/proc/self/uid_map", "stat=/etc/hostname", "write=/etc/hostname:mine", "write=/data/new:1",
		"sethostname=fw-own", "hostname", "caps", "syscall=mount", "mount-tmpfs", "mknod-null=/tmp/n", "exists=/dev/null", "write=/dev/null:x")
	for k, want := range map[string]string{
		"euid": "0", "read:/proc/self/uid_map": fmt.Sprintf("%q", fmt.Sprintf("%10d %10d %10d\n", 0, m.Host, m.Count)),
		"stat:/etc/hostname": "0:0 644", "write:/etc/hostname": "ok", "write:/data/new": "ok",
		"sethostname": "ok", "hostname": "fw-own", "syscall:mount": "EPERM", "mount-tmpfs": "EPERM",
		"mknod-null": "EPERM", "write:/dev/null": "ok",
	} {
		if got := r.one(k); got != want {
			t.Errorf("inside the user namespace: %s = %s, want %s", k, got, want)
		}
	}
	var st unix.Stat_t
	for _, p := range []string{"etc/hostname", "data/new"} {
		if err := unix.Stat(filepath.Join(l.upper, p), &st); err != nil || st.Uid != 0 {
			t.Errorf("%s in the upper layer: uid %d (%v), want 0 (stored through the idmap)", p, st.Uid, err)
		}
	}
	if h, _ := os.Hostname(); h == "fw-own" {
		t.Errorf("the firmware set the host's hostname")
	}
}
