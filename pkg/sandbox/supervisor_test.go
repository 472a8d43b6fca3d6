package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func exited(code int) unix.WaitStatus        { return unix.WaitStatus(code << 8) }
func killed(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }

func TestParseRestarts(t *testing.T) {
	for in, want := range map[string]Restarts{"always": Always, "ALWAYS": Always, "never": 0, "no": 0, "0": 0, "3": 3} {
		got, err := ParseRestarts(in)
		if err != nil || got != want {
			t.Errorf("ParseRestarts(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "x", "99999999"} {
		if _, err := ParseRestarts(in); err == nil {
			t.Errorf("ParseRestarts(%q): no error", in)
		}
	}
	for r, want := range map[Restarts]string{Always: "always", 0: "never", 2: "2"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q", int(r), r.String())
		}
	}
}

func TestParseNet(t *testing.T) {
	for in, want := range map[string]Net{"private": NetPrivate, "HOST": NetHost} {
		if got, err := ParseNet(in); err != nil || got != want {
			t.Errorf("ParseNet(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseNet("bridge"); err == nil {
		t.Error("ParseNet(bridge): no error")
	}
}

func TestEndingString(t *testing.T) {
	for _, c := range []struct {
		e    Ending
		want string
	}{
		{Ending{Status: exited(3)}, "exited with status 3"},
		{Ending{Status: exited(0)}, "exited with status 0"},
		{Ending{Status: killed(unix.SIGSEGV)}, "killed by signal 11 (SIGSEGV)"},
		{Ending{Status: exited(ChildFailed)}, "the sandbox could not be set up"},
		{Ending{Err: errors.New("boom")}, "could not start: boom"},
	} {
		if got := c.e.String(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%#x: %q, want %q", uint32(c.e.Status), got, c.want)
		}
	}
}

// fakeRuns makes a supervisor whose runs end as statuses say, in order.
func fakeRuns(statuses ...unix.WaitStatus) (*Supervisor, *[]string, *int) {
	var logs []string
	started := 0
	s := &Supervisor{
		Start: func() (int, error) { started++; return 100 + started, nil },
		Wait: func(pid int) (unix.WaitStatus, error) {
			i := pid - 101
			if i >= len(statuses) {
				return exited(0), nil
			}
			return statuses[i], nil
		},
		Delay: time.Second,
		Sleep: func(time.Duration) {},
		Logf:  func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) },
	}
	return s, &logs, &started
}

func TestSupervisorPolicy(t *testing.T) {
	for _, c := range []struct {
		restarts Restarts
		statuses []unix.WaitStatus
		runs     int
	}{
		{0, []unix.WaitStatus{exited(1)}, 1},
		{1, []unix.WaitStatus{exited(3), exited(0)}, 2},
		{3, []unix.WaitStatus{killed(unix.SIGSEGV), exited(1), exited(2), exited(0)}, 4},
		// A broken sandbox is never restarted, whatever the policy.
		{Always, []unix.WaitStatus{exited(ChildFailed)}, 1},
	} {
		s, logs, started := fakeRuns(c.statuses...)
		s.Restarts = c.restarts
		endings := s.Run()
		if len(endings) != c.runs || *started != c.runs {
			t.Errorf("restart %s: %d runs (%d started), want %d; log %q", c.restarts, len(endings), *started, c.runs, *logs)
			continue
		}
		for i, e := range endings {
			if e.Status != c.statuses[i] {
				t.Errorf("restart %s: run %d ended %v, want %v", c.restarts, i, e.Status, c.statuses[i])
			}
		}
		if !strings.Contains(strings.Join(*logs, "\n"), "the firmware (pid 101) "+endings[0].String()) {
			t.Errorf("log does not say how the first run ended: %q", *logs)
		}
	}
}

func TestSupervisorAlwaysAndPanic(t *testing.T) {
	// "always" goes on until something stops it: here the fifth start
	// fails, which ends the supervision.
	n := 0
	s := &Supervisor{
		Restarts: Always,
		Start: func() (int, error) {
			n++
			if n == 3 {
				panic("bug in start")
			}
			if n == 5 {
				return 0, errors.New("no more")
			}
			return n, nil
		},
		Wait:  func(int) (unix.WaitStatus, error) { return exited(1), nil },
		Sleep: func(time.Duration) {},
	}
	endings := s.Run()
	if len(endings) != 3 || endings[2].Err == nil || !strings.Contains(endings[2].Err.Error(), "panicked") {
		t.Errorf("endings %v: want a recovered panic ending the third run", endings)
	}
}

func TestKeptMask(t *testing.T) {
	last := unix.CAP_CHECKPOINT_RESTORE
	priv := KeptMask(NetPrivate, last)
	host := KeptMask(NetHost, last)
	for c := range Dropped {
		if priv&(1<<uint(c)) != 0 || host&(1<<uint(c)) != 0 {
			t.Errorf("%s kept", CapName(c))
		}
	}
	for _, c := range []int{unix.CAP_SYS_TIME, unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_SYS_BOOT, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE, unix.CAP_SYS_ADMIN} {
		if _, ok := Dropped[c]; !ok {
			t.Errorf("%s is not in Dropped", CapName(c))
		}
	}
	if priv&(1<<unix.CAP_NET_ADMIN) == 0 || host&(1<<unix.CAP_NET_ADMIN) != 0 {
		t.Errorf("CAP_NET_ADMIN: want kept with a private network only")
	}
	if priv&(1<<unix.CAP_CHOWN) == 0 || priv&(1<<unix.CAP_KILL) == 0 {
		t.Errorf("CAP_CHOWN and CAP_KILL must be kept")
	}
	for c := 0; c <= last; c++ {
		if strings.HasPrefix(CapName(c), "cap_") {
			t.Errorf("capability %d has no name", c)
		}
	}
}

func TestProfile(t *testing.T) {
	p := Profile("fw")
	for _, want := range []string{"profile fw flags=(attach_disconnected", "deny capability sys_time,", "deny capability sys_module,", "deny mount,", "deny /proc/sysrq-trigger wklx,"} {
		if !strings.Contains(p, want) {
			t.Errorf("profile lacks %q:\n%s", want, p)
		}
	}
	if strings.Count(p, "{") != 1 || !strings.HasSuffix(p, "}\n") {
		t.Errorf("profile braces:\n%s", p)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []Config{
		{Root: "relative", Init: "/sbin/init"},
		{Root: dir + "/missing", Init: "/sbin/init"},
		{Root: dir, Init: "sbin/init"},
		{Root: dir, Init: "/sbin/init", Net: "bridge"},
	} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (&Config{Root: dir, Init: "/sbin/init"}).Check(); err != nil {
		t.Error(err)
	}
	c := Config{Net: NetHost}
	if c.Cloneflags()&unix.CLONE_NEWNET != 0 {
		t.Error("host network with CLONE_NEWNET")
	}
	c.Net = NetPrivate
	if f := c.Cloneflags(); f&unix.CLONE_NEWNET == 0 || f&unix.CLONE_NEWPID == 0 || f&unix.CLONE_NEWNS == 0 || f&unix.CLONE_NEWUTS == 0 || f&unix.CLONE_NEWIPC == 0 || f&unix.CLONE_NEWCGROUP == 0 {
		t.Errorf("clone flags %#x lack a namespace", f)
	}
}

// TestReapAll: waiting for one child reaps the others that ended, as
// PID 1 must (they would stay zombies otherwise).
func TestReapAll(t *testing.T) {
	start := func(code string) int {
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit " + code}, &os.ProcAttr{})
		if err != nil {
			t.Skipf("no /bin/sh: %v", err)
		}
		pid := p.Pid
		p.Release()
		return pid
	}
	orphan := start("4")
	// The orphan has ended once a wait for it with WNOWAIT returns.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, orphan, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	fw := start("5")
	ws, err := ReapAll(fw)
	if err != nil || !ws.Exited() || ws.ExitStatus() != 5 {
		t.Fatalf("ReapAll = %v %v, want exit 5", ws, err)
	}
	var ws2 unix.WaitStatus
	if _, err := unix.Wait4(orphan, &ws2, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("the other child was not reaped: wait4 says %v", err)
	}
}

// TestCgroupDirs: where an instance's cgroup goes on a cgroup v2 host,
// a hybrid one whose controllers are in v1 (as this CI host), and a
// host with neither.
func TestCgroupDirs(t *testing.T) {
	v2 := "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	hybrid := "24 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n" +
		"25 24 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n" +
		"26 24 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"27 24 0:25 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
	self := "4:memory:/user/me\n8:pids:/\n0::/user.slice/x.scope\n"
	ctl := func(want string) func(string) string { return func(string) string { return want } }
	dirs, isV2, err := CgroupDirs(v2, self, "fw", ctl("cpuset cpu io memory hugetlb pids rdma misc"))
	if err != nil || !isV2 || len(dirs) != 1 || dirs[0] != "/sys/fs/cgroup/ofsroot-sandbox/fw" {
		t.Errorf("v2: %v %v %v", dirs, isV2, err)
	}
	dirs, isV2, err = CgroupDirs(hybrid, self, "fw", ctl("hugetlb"))
	want := []string{"/sys/fs/cgroup/memory/user/me/ofsroot-sandbox-fw", "/sys/fs/cgroup/pids/ofsroot-sandbox-fw"}
	if err != nil || isV2 || fmt.Sprint(dirs) != fmt.Sprint(want) {
		t.Errorf("hybrid: %v %v %v, want %v", dirs, isV2, err, want)
	}
	if _, _, err := CgroupDirs(v2, self, "fw", ctl("cpu io")); err == nil {
		t.Errorf("v2 without memory and pids, no v1: no error")
	}
}
