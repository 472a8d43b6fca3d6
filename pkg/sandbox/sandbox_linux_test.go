package sandbox

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func TestMain(m *testing.M) {
	// The test binary is also the sandbox child (Start re-executes
	// /proc/self/exe).
	RunChildIfRequested()
	code := m.Run()
	if escapeBin != "" {
		os.RemoveAll(filepath.Dir(escapeBin))
	}
	os.Exit(code)
}

var (
	escapeOnce sync.Once
	escapeBin  string
	escapeErr  error
)

// escapeHelper builds testdata/escape static, once.
func escapeHelper(t *testing.T) string {
	t.Helper()
	escapeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ofsroot-escape-")
		if err != nil {
			escapeErr = err
			return
		}
		escapeBin = filepath.Join(dir, "escape")
		cmd := exec.Command("go", "build", "-o", escapeBin, "./testdata/escape")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			escapeErr = fmt.Errorf("go build ./testdata/escape: %v\n%s", err, out)
		}
	})
	if escapeErr != nil {
		t.Fatal(escapeErr)
	}
	return escapeBin
}

// firmware makes a lower layer holding the escape helper as /bin/escape
// and an overlay of it (with its own upper) at merged. It returns the
// lower and merged folders.
type layers struct{ lower, upper, merged string }

func makeLower(t *testing.T) string {
	t.Helper()
	lower := filepath.Join(t.TempDir(), "lower")
	for _, d := range []string{"bin", "etc", "data", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(escapeHelper(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "bin/escape"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "etc/hostname"), []byte("firmware\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return lower
}

func overlay(t *testing.T, lower string) layers {
	t.Helper()
	dir := t.TempDir()
	l := layers{lower: lower, upper: filepath.Join(dir, "upper"), merged: filepath.Join(dir, "merged")}
	for _, d := range []string{l.upper, l.merged, filepath.Join(dir, "work")} {
		os.MkdirAll(d, 0o755)
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, l.upper, filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", l.merged, "overlay", 0, data); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(l.merged, unix.MNT_DETACH) })
	return l
}

// results runs the helper in a sandbox and returns its ESCAPE lines.
type results map[string][]string

func (r results) one(k string) string {
	if v := r[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return "(missing)"
}

func start(t *testing.T, c Config, stdin *os.File, actions ...string) (*os.Process, *io.PipeReader) {
	t.Helper()
	c.Init = "/bin/escape"
	c.Args = actions
	pr, pw := io.Pipe()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(c, stdin, outW, outW)
	if err != nil {
		t.Fatalf("starting the sandbox: %v", err)
	}
	outW.Close()
	go func() { io.Copy(pw, outR); outR.Close(); pw.Close() }()
	return p, pr
}

func collect(t *testing.T, p *os.Process, out io.Reader) results {
	t.Helper()
	r := results{}
	var all strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if rest, ok := strings.CutPrefix(sc.Text(), "ESCAPE "); ok {
			k, v, _ := strings.Cut(rest, "=")
			r[k] = append(r[k], v)
		}
	}
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Errorf("sandbox ended: %v %v; output:\n%s", st, err, all.String())
	}
	return r
}

func run(t *testing.T, c Config, actions ...string) results {
	t.Helper()
	cmd, out := start(t, c, nil, actions...)
	return collect(t, cmd, out)
}

func hashTree(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d\n", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

func rootDevice(t *testing.T) (string, uint32, uint32) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)), unix.Major(st.Dev), unix.Minor(st.Dev)
}

// TestEscapes runs a hostile program as the sandbox's init and checks
// that every attempt to reach the host fails and the host is as it was.
func TestEscapes(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	lower := makeLower(t)
	before := hashTree(t, lower)
	l := overlay(t, lower)

	// A process outside, to be signalled from inside.
	victim := exec.Command("sleep", "600")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer victim.Process.Kill()
	// A host service the private network must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var tsBefore unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &tsBefore)
	hostname, _ := os.Hostname()
	_, maj, min := rootDevice(t)
	// A real disk the sandbox is given as an allowed device
	// (ofs-sandbox-dev=): the node must be there and open inside, and
	// mounting it must be refused for want of the right, not because
	// the node is missing (ENOENT would pass with CAP_SYS_ADMIN kept).
	hostDisk := loopDisk(t)
	mnt := t.TempDir()
	if err := unix.Mount(hostDisk, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("control: mounting %s outside the sandbox: %v", hostDisk, err)
	}
	unix.Unmount(mnt, 0)
	mountsBefore, _ := os.ReadFile("/proc/thread-self/mountinfo")

	r := run(t, Config{Root: l.merged, Hostname: "fw-test", Net: NetPrivate, Devices: []string{hostDisk}}, "open="+hostDisk,
		"pid", "hostname", "caps",
		"mount-tmpfs", "mount-disk="+hostDisk, fmt.Sprintf("mknod=%d:%d", maj, min),
		"sysrq", "settime", "module",
		fmt.Sprintf("kill=%d", victim.Process.Pid),
		"connect="+ln.Addr().String(),
		"write=/etc/hostname:changed inside\n", "write=/proc/sys/kernel/hostname:x",
		"exists=/dev/null", "exists=/dev/console", "exists=/dev/ptmx",
		"read=/proc/kcore", "read=/proc/kmsg", "mounts")

	if got := r.one("mount-disk"); got != "EPERM" {
		t.Errorf("mount %s (an allowed device) inside: %s, want EPERM", hostDisk, got)
	}
	if got := r.one("open:" + hostDisk); got != "ok" {
		t.Errorf("opening the allowed device %s inside: %s, want ok", hostDisk, got)
	}
	if got := r.one("pid"); got != "1" {
		t.Errorf("the init runs as PID %s, want 1", got)
	}
	if got := r.one("hostname"); got != "fw-test" {
		t.Errorf("hostname inside %q, want fw-test", got)
	}
	for _, k := range []string{"mount-tmpfs", "mount-disk", "mknod", "sysrq", "settime", "module", "kill", "connect", "write:/proc/sys/kernel/hostname"} {
		if got := r.one(k); got == "ok" || got == "(missing)" {
			t.Errorf("escape attempt %s: %s, want a failure", k, got)
		}
	}
	// This kernel may lack some of the files (a VM host built without
	// sysrq, kcore or modules); then the attempt fails with ENOENT or
	// ENOSYS on the host too, and the QEMU boot test covers them.
	wantSysrq, wantModule, wantKcore := "EROFS", "EPERM", `""`
	if _, err := os.Stat("/proc/sysrq-trigger"); err != nil {
		wantSysrq = "ENOENT"
	}
	if _, err := os.Stat("/proc/kcore"); err != nil {
		wantKcore = "ENOENT"
	}
	if got := r.one("sysrq"); got != wantSysrq {
		t.Errorf("write /proc/sysrq-trigger: %s, want %s", got, wantSysrq)
	}
	if got := r.one("read:/proc/kmsg"); got != `""` {
		t.Errorf("read /proc/kmsg: %s, want empty (masked)", got)
	}
	if got := r.one("settime"); got != "EPERM" {
		t.Errorf("clock_settime: %s, want EPERM", got)
	}
	if got := r.one("module"); got != wantModule {
		t.Errorf("finit_module: %s, want %s", got, wantModule)
	}
	// Refused, not unreachable: lo is up in the sandbox's own network,
	// where nothing listens.
	if got := r.one("connect"); got != "ECONNREFUSED" {
		t.Errorf("connect to the host's 127.0.0.1 service: %s, want ECONNREFUSED", got)
	}
	if got := r.one("kill"); got != "ESRCH" {
		t.Errorf("kill(host pid): %s, want ESRCH (not visible)", got)
	}
	if got := r.one("read:/proc/kcore"); got != wantKcore {
		t.Errorf("read /proc/kcore: %s, want %s (masked)", got, wantKcore)
	}
	if got := r.one("write:/etc/hostname"); got != "ok" {
		t.Errorf("writing the sandbox's own /etc/hostname: %s, want ok", got)
	}
	for _, d := range []string{"/dev/null", "/dev/console", "/dev/ptmx"} {
		want := "ok"
		if d == "/dev/console" {
			want = "ENOENT" // no Console given
		}
		if got := r.one("exists:" + d); got != want {
			t.Errorf("%s inside: %s, want %s", d, got, want)
		}
	}
	// Capabilities, against the kernel's bit numbers written out here
	// (not the code's own Dropped list): none of the dangerous ones in
	// any set, and the harmless ones kept (a set of zeros passes the
	// first check by accident).
	mustNot := map[int]string{16: "SYS_MODULE", 17: "SYS_RAWIO", 21: "SYS_ADMIN", 22: "SYS_BOOT", 25: "SYS_TIME", 27: "MKNOD", 32: "MAC_OVERRIDE", 33: "MAC_ADMIN", 34: "SYSLOG", 38: "PERFMON", 39: "BPF"}
	mustKeep := map[int]string{0: "CHOWN", 1: "DAC_OVERRIDE", 5: "KILL", 6: "SETGID", 7: "SETUID", 12: "NET_ADMIN"}
	for _, set := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"} {
		m, err := ParseCapMask(r.one(set))
		if err != nil {
			t.Errorf("%s: %v", set, err)
			continue
		}
		for c, name := range mustNot {
			if m&(1<<uint(c)) != 0 {
				t.Errorf("%s has CAP_%s", set, name)
			}
		}
		if set == "CapEff" || set == "CapBnd" {
			for c, name := range mustKeep {
				if m&(1<<uint(c)) == 0 {
					t.Errorf("%s lacks CAP_%s, which the firmware keeps", set, name)
				}
			}
		}
	}
	if got := r.one("NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs %s, want 1", got)
	}
	// The mount table inside shows no host mount (the old root is gone).
	for _, m := range r["mount"] {
		if mi, _ := mountfs.ParseMountinfoLine(m); mi.Point == "/mnt/sandboxing" || strings.Contains(m, " "+lower+" ") {
			t.Errorf("a host mount is visible inside: %s", m)
		}
	}
	// The host is as it was.
	if err := victim.Process.Signal(unix.Signal(0)); err != nil {
		t.Errorf("the host process is gone: %v", err)
	}
	if h, _ := os.Hostname(); h != hostname {
		t.Errorf("host name changed from %q to %q", hostname, h)
	}
	var tsAfter unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &tsAfter)
	if tsAfter.Sec < tsBefore.Sec {
		t.Errorf("the host clock went back")
	}
	if got := hashTree(t, lower); got != before {
		t.Errorf("the firmware (lower layer) changed")
	}
	if b, err := os.ReadFile(filepath.Join(l.upper, "etc/hostname")); err != nil || string(b) != "changed inside\n" {
		t.Errorf("the write inside is not in the instance's upper layer: %q %v", b, err)
	}
	mountsAfter, _ := os.ReadFile("/proc/thread-self/mountinfo")
	if string(mountsAfter) != string(mountsBefore) {
		t.Errorf("the test's mount table changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, mountsAfter)
	}
}

// TestHostNetwork is the control for the private network: with the
// host's network the same connection works, and NET_ADMIN is gone.
func TestHostNetwork(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	l := overlay(t, makeLower(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	r := run(t, Config{Root: l.merged, Net: NetHost}, "connect="+ln.Addr().String(), "caps", "hostname")
	if got := r.one("connect"); got != "ok" {
		t.Errorf("connect with the host's network: %s, want ok", got)
	}
	m, _ := ParseCapMask(r.one("CapEff"))
	if m&(1<<unix.CAP_NET_ADMIN) != 0 {
		t.Errorf("CAP_NET_ADMIN kept with the host's network")
	}
	if got := r.one("hostname"); got != DefaultHostname {
		t.Errorf("hostname %q, want %q", got, DefaultHostname)
	}
}

// TestTwoInstances runs two instances of one firmware at once: neither
// sees the other's writes.
func TestTwoInstances(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	lower := makeLower(t)
	before := hashTree(t, lower)
	a, b := overlay(t, lower), overlay(t, lower)

	// A writes, then waits for its stdin to close; B runs meanwhile.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmdA, outA := start(t, Config{Root: a.merged, Hostname: "a"}, inR, "write=/data/who:a", "wait", "exists=/data/b", "read=/data/who")
	inR.Close()
	// A's write is done once its upper has the file: wait for it
	// without a clock, by reading A's output line.
	sc := bufio.NewReader(outA)
	line, err := sc.ReadString('\n')
	if err != nil || !strings.Contains(line, "write:/data/who=ok") {
		t.Fatalf("A's first line %q (%v)", line, err)
	}
	rb := run(t, Config{Root: b.merged, Hostname: "b"}, "exists=/data/who", "write=/data/b:b")
	inW.Close()
	ra := collect(t, cmdA, sc)
	if got := rb.one("exists:/data/who"); got != "ENOENT" {
		t.Errorf("B sees A's /data/who: %s", got)
	}
	if got := ra.one("exists:/data/b"); got != "ENOENT" {
		t.Errorf("A sees B's /data/b: %s", got)
	}
	if got := ra.one("read:/data/who"); got != `"a"` {
		t.Errorf("A reads its own /data/who as %s", got)
	}
	if got := hashTree(t, lower); got != before {
		t.Errorf("the firmware (lower layer) changed")
	}
}

// TestSetupFailure: a root without the init ends with ChildFailed and a
// message, and is not restarted by a supervisor.
func TestSetupFailure(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	l := overlay(t, makeLower(t))
	var logs []string
	var stderr strings.Builder
	s := &Supervisor{
		Start: func() (int, error) {
			errR, errW, _ := os.Pipe()
			p, err := Start(Config{Root: l.merged, Init: "/sbin/missing"}, nil, errW, errW)
			errW.Close()
			if err != nil {
				return 0, err
			}
			b, _ := io.ReadAll(errR)
			stderr.Write(b)
			return p.Pid, nil
		},
		Restarts: Always,
		Logf:     func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) },
	}
	endings := s.Run()
	if len(endings) != 1 || !IsChildFailure(endings[0].Status) {
		t.Fatalf("endings %v, want one setup failure; logs %q", endings, logs)
	}
	if !strings.Contains(stderr.String(), "exec /sbin/missing") {
		t.Errorf("the child's message %q does not name the init", stderr.String())
	}
}

// loopDisk makes a small ext4 image on a loop device and returns the
// device's path.
func loopDisk(t *testing.T) string {
	t.Helper()
	mountfstest.NeedTools(t, "mkfs.ext4", "losetup")
	img := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}
