package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
	"github.com/ofsroot/ofsroot/pkg/sandbox/store"
)

// The test binary is the sandbox child too: sandbox.go's init() hands
// over to sandbox.RunChildIfRequested before any test runs.

// sandboxHelper builds pkg/sandbox/testdata/escape static into dir.
func sandboxHelper(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "escape")
	cmd := exec.Command("go", "build", "-o", out, "../../pkg/sandbox/testdata/escape")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build escape: %v\n%s", err, b)
	}
	return out
}

// firmwareTree makes a firmware folder: /bin/escape, /etc/hostname,
// /etc/gone, /old/f, /greetings and the usual mount points.
func firmwareTree(t *testing.T, dir, helper string) string {
	t.Helper()
	// The firmware's root in its user namespace (an unprivileged uid
	// of the host) must reach the instance's union in the state folder
	// under dir: the test's folders are 0700.
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o711)
	}
	fw := filepath.Join(dir, "fw")
	for _, d := range []string{"bin", "etc", "data", "old", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(fw, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"etc/hostname": "fw\n", "etc/gone": "x\n", "old/f": "y\n", "greetings": "plop\n"} {
		if err := os.WriteFile(filepath.Join(fw, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(fw, "bin/escape"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return fw
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	h, _, err := store.HashFirmware(path)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mountsUnder lists this process's mounts under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return store.Mounted(string(b), dir)
}

// ofsrootBin is this package built, once per test: the runner runs as
// its own process, as users run it, so that all its threads share the
// test's private mount namespace (the process is forked from the
// test's locked thread).
var ofsrootBin string

func buildOfsroot(t *testing.T) {
	t.Helper()
	ofsrootBin = filepath.Join(t.TempDir(), "ofsroot")
	if b, err := exec.Command("go", "build", "-o", ofsrootBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// ofsroot runs the command and returns its exit code, stdout and
// stderr.
func ofsroot(args ...string) (int, string, string) {
	if ofsrootBin == "" {
		var out, errb bytes.Buffer
		return program.Main(args, &out, &errb), out.String(), errb.String()
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(ofsrootBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return exitCode(err), out.String(), errb.String()
}

// background starts the command; its stdout lines arrive on the
// channel, its exit code on done.
func background(t *testing.T, args ...string) (<-chan string, <-chan int, *bytes.Buffer, int) {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(ofsrootBin, args...)
	cmd.Stderr = &errb
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	done := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- exitCode(cmd.Wait())
	}()
	return lines, done, &errb, cmd.Process.Pid
}

// waitLine reads lines until one has want.
func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	for l := range lines {
		if strings.Contains(l, want) {
			return
		}
	}
	t.Fatalf("the firmware never printed %q", want)
}

// escapeChild finds the sandboxed escape helper the runner parent
// started.
func escapeChild(t *testing.T, parent int) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && strings.Contains(s[:i], "(escape") && f[1] == strconv.Itoa(parent) {
			return pid
		}
	}
	t.Fatal("no sandboxed escape helper among this process's children")
	return 0
}

func TestSandboxRunner(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "mkfs.ext4")
	buildOfsroot(t)
	dir := t.TempDir()
	fw := firmwareTree(t, dir, sandboxHelper(t, dir))
	img := filepath.Join(dir, "fw.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", fw, img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	imgHash := sha256Of(t, img)
	state := filepath.Join(dir, "state")

	// 1. One instance makes changes; diff reports exactly them.
	code, out, errs := ofsroot("sandbox", "run", img, "--layer-size", "16M", "--name", "a", "--state", state, "--init", "/bin/escape", "--",
		"pid", "hostname", "write=/data/new:1", "write=/etc/hostname:changed", "remove=/etc/gone", "remove=/old", "mkdir=/old", "mkdir=/newdir", "write=/greetings:plop\n")
	if code != 0 {
		t.Fatalf("run a: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"ESCAPE pid=1", "ESCAPE hostname=a", "ESCAPE write:/data/new=ok", "ESCAPE remove:/old=ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("run a: output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = ofsroot("sandbox", "diff", "a", "--state", state)
	want := "A /data/new\nD /etc/gone\nM /etc/hostname (content)\nA /newdir/\nO /old/\nD /old/f\n"
	if code != 0 || out != want {
		t.Errorf("diff a: exit %d\n%s\nwant:\n%s\n%s", code, out, want, errs)
	}

	// 2. Two instances at once do not see each other's writes.
	lines, done, p1err, p1 := background(t, "sandbox", "run", img, "--layer-size", "16M", "--name", "p1", "--state", state, "--init", "/bin/escape", "--", "write=/data/p1:1", "pause")
	waitLine(t, lines, "ESCAPE pause=ok")
	code, out, errs = ofsroot("sandbox", "run", img, "--layer-size", "16M", "--name", "p2", "--state", state, "--init", "/bin/escape", "--", "exists=/data/p1", "exists=/data/new", "write=/data/p2:2")
	if code != 0 || !strings.Contains(out, "ESCAPE exists:/data/p1=ENOENT") || !strings.Contains(out, "ESCAPE exists:/data/new=ENOENT") {
		t.Errorf("p2 sees another instance's files (exit %d):\n%s\n%s", code, out, errs)
	}
	code, out, _ = ofsroot("sandbox", "list", "--state", state)
	if code != 0 || !regexpLine(out, "p1", "running (pid "+strconv.Itoa(p1)+")") || !regexpLine(out, "p2", "stopped: exited with status 0") || !regexpLine(out, "a ", imgHash[:12], "image") {
		t.Errorf("list:\n%s", out)
	}
	if code, _, errs := ofsroot("sandbox", "run", img, "--layer-size", "16M", "--name", "p1", "--state", state, "--init", "/bin/escape"); code == 0 || !strings.Contains(errs, "running already") {
		t.Errorf("a second run of a running instance: exit %d, %s", code, errs)
	}
	if code, _, errs := ofsroot("sandbox", "drop", "p1", "--state", state); code == 0 || !strings.Contains(errs, "is running") {
		t.Errorf("drop of a running instance: exit %d, %s", code, errs)
	}
	code, out, errs = ofsroot("sandbox", "stop", "p1", "--now", "--state", state)
	if code != 0 {
		t.Errorf("stop p1: exit %d %s %s", code, out, errs)
	}
	if code := <-done; code != 128+9 {
		t.Errorf("run p1 ended with exit %d, want %d (killed); stderr:\n%s", code, 128+9, p1err)
	}
	if code, out, _ := ofsroot("sandbox", "diff", "p1", "--state", state); code != 0 || out != "A /data/p1\n" {
		t.Errorf("diff p1: %d %q", code, out)
	}
	if code, out, _ := ofsroot("sandbox", "diff", "p2", "--state", state); code != 0 || out != "A /data/p2\n" {
		t.Errorf("diff p2: %d %q", code, out)
	}

	// 3. Stale mounts of an earlier run are cleaned at the next start.
	if err := unix.Mount("tmpfs", filepath.Join(state, "instances/p2/union"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	code, _, errs = ofsroot("sandbox", "run", img, "--layer-size", "16M", "--state", state, "--init", "/bin/escape", "--", "exit=3")
	if code != 3 {
		t.Errorf("run with exit=3: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "unmounted what an earlier run of p2 left mounted") {
		t.Errorf("no word of the stale mount:\n%s", errs)
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted after the runs: %q", m)
	}
	if _, err := os.Stat(filepath.Join(state, "instances", imgHash[:8])); err != nil {
		t.Errorf("an instance without --name is named after the firmware's hash: %v", err)
	}

	// 4. The firmware image is unchanged; drop leaves nothing.
	if got := sha256Of(t, img); got != imgHash {
		t.Errorf("the firmware image changed: %s, was %s", got, imgHash)
	}
	for _, n := range []string{"a", "p1", "p2", imgHash[:8]} {
		if code, _, errs := ofsroot("sandbox", "drop", n, "--state", state); code != 0 {
			t.Errorf("drop %s: %s", n, errs)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "instances")); len(entries) != 0 {
		t.Errorf("instances left after drop: %v", entries)
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted after drop: %q", m)
	}
	if code, _, errs := ofsroot("sandbox", "diff", "a", "--state", state); code == 0 || !strings.Contains(errs, "no such instance") {
		t.Errorf("diff of a dropped instance: %d %s", code, errs)
	}
}

// TestSandboxRemount: a firmware folder changed by its developer is
// seen by the running instance after remount.
func TestSandboxRemount(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	buildOfsroot(t)
	dir := t.TempDir()
	fw := firmwareTree(t, dir, sandboxHelper(t, dir))
	state := filepath.Join(dir, "state")
	lines, done, errb, runner := background(t, "sandbox", "run", fw, "--layer-size", "16M", "--name", "dev", "--state", state, "--init", "/bin/escape", "--", "read=/greetings", "waitsig", "read=/greetings")
	waitLine(t, lines, "ESCAPE waitsig=ready")
	// The developer rebuilds: the file is replaced, not rewritten.
	os.Remove(filepath.Join(fw, "greetings"))
	if err := os.WriteFile(filepath.Join(fw, "greetings"), []byte("moo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := ofsroot("sandbox", "remount", "dev", "--state", state); code != 0 {
		t.Fatalf("remount: %d %s %s", code, out, errs)
	}
	unix.Kill(escapeChild(t, runner), unix.SIGUSR2)
	var reads []string
	for l := range lines {
		if v, ok := strings.CutPrefix(l, "ESCAPE read:/greetings="); ok {
			reads = append(reads, v)
		}
	}
	if code := <-done; code != 0 {
		t.Errorf("run dev: exit %d\n%s", code, errb)
	}
	if len(reads) != 1 || reads[0] != `"moo\n"` {
		t.Errorf("after remount the firmware read %q, want \"moo\\n\"", reads)
	}
	if code, _, errs := ofsroot("sandbox", "remount", "dev", "--state", state); code == 0 || !strings.Contains(errs, "not running") {
		t.Errorf("remount of a stopped instance: %d %s", code, errs)
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted: %q", m)
	}
}

func TestSandboxUsage(t *testing.T) {
	ofsrootBin = "" // in-process
	for _, args := range [][]string{
		{"sandbox"},
		{"sandbox", "frobnicate"},
		{"sandbox", "run"},
		{"sandbox", "run", "a", "b"},
		{"sandbox", "run", "x", "--net", "bridge"},
		{"sandbox", "run", "x", "--restart", "sometimes"},
		{"sandbox", "run", "x", "--name", "Bad Name"},
		{"sandbox", "stop"},
		{"sandbox", "drop", "a", "b"},
		{"sandbox", "diff", "../etc"},
		{"sandbox", "list", "x"},
	} {
		if code, _, _ := ofsroot(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := ofsroot("sandbox", "profile"); code != 0 || !strings.Contains(out, "profile "+sandbox.DefaultProfile) {
		t.Errorf("profile: %d %s", code, out)
	}
	if code, out, _ := ofsroot("sandbox", "--help"); code != 0 || !strings.Contains(out, "ofsroot sandbox run FIRMWARE") {
		t.Errorf("--help: %d %s", code, out)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := program.FlagSet("sandbox", "x", io.Discard)
	name := fs.String("name", "", "")
	pos, after, err := parseInterspersed(fs, []string{"fw.img", "--name", "n", "--", "--name", "z"})
	if err != nil || *name != "n" || fmt.Sprint(pos) != "[fw.img]" || fmt.Sprint(after) != "[--name z]" {
		t.Errorf("got %q %q %q %v", *name, pos, after, err)
	}
	if _, _, err := parseInterspersed(fs, []string{"--nope"}); err == nil || errors.Is(err, nil) {
		t.Errorf("unknown flag: %v", err)
	}
}

// TestParseRunFlags: sandbox run's flags, checked without root and
// without touching anything.
func TestParseRunFlags(t *testing.T) {
	o, err := parseRunFlags([]string{"fw.img", "--name", "dev1", "--net", "host", "--memory", "512M", "--pids", "0",
		"--layer-size", "64M", "--restart", "3", "--userns=false", "--hostname", "box", "--init", "/sbin/init", "--", "--single"}, io.Discard)
	want := runOptions{firmware: "fw.img", fwArgs: []string{"--single"}, name: "dev1", state: store.DefaultStateDir, net: sandbox.NetHost,
		init: "/sbin/init", restarts: 3, hostname: "box", memory: 512 << 20, pids: 0, layerSize: 64 << 20, userns: false}
	if err != nil || !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v, %v\nwant %+v", o, err, want)
	}
	o, err = parseRunFlags([]string{"fw"}, io.Discard)
	if err != nil || o.memory != 1<<30 || o.pids != 4096 || o.layerSize != 1<<30 || !o.userns || o.restarts != 0 || o.net != sandbox.NetPrivate {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fw", "--memory", "-1"}, "--memory"},
		{[]string{"fw", "--memory", "lots"}, "--memory"},
		{[]string{"fw", "--layer-size", "4M"}, "--layer-size"},
		{[]string{"fw", "--pids", "-2"}, "--pids -2"},
		{[]string{}, "one FIRMWARE"},
		{[]string{"a", "b"}, "one FIRMWARE"},
		{[]string{"fw", "--net", "bridge"}, "--net"},
		{[]string{"fw", "--restart", "sometimes"}, "--restart"},
		{[]string{"fw", "--name", "../x"}, "--name"},
	} {
		_, err := parseRunFlags(tc.args, io.Discard)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want a usage error naming %s", tc.args, err, tc.want)
		}
	}
}

// regexpLine says whether one line of text has every part.
func regexpLine(text string, parts ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestSandboxRunnerKilled: a runner killed with SIGKILL takes its
// firmware with it (PR_SET_PDEATHSIG) and leaves its mounts; the next run
// unmounts them.
func TestSandboxRunnerKilled(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	buildOfsroot(t)
	dir := t.TempDir()
	fw := firmwareTree(t, dir, sandboxHelper(t, dir))
	state := filepath.Join(dir, "state")
	lines, done, _, runner := background(t, "sandbox", "run", fw, "--layer-size", "16M", "--name", "k", "--state", state, "--init", "/bin/escape", "--", "pause")
	waitLine(t, lines, "ESCAPE pause=ok")
	child := escapeChild(t, runner)
	if err := unix.Kill(runner, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	// The kernel kills the firmware when its parent dies; it is gone (or
	// a zombie for the host's init to reap) once that is done. This loop
	// only waits for the kernel; it has no deadline of its own.
	for gone := false; !gone; {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(child), "stat"))
		s := string(b)
		gone = err != nil || strings.Contains(s[strings.LastIndexByte(s, ')')+1:], " Z ")
		if !gone {
			unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
		}
	}
	if len(mountsUnder(t, state)) == 0 {
		t.Fatal("the killed runner left nothing mounted: nothing to clean (test precondition)")
	}
	kCgroup := instanceCgroups(t, "k")
	code, out, _ := ofsroot("sandbox", "list", "--state", state)
	if code != 0 || !regexpLine(out, "k ", "stopped") {
		t.Errorf("list after the kill:\n%s", out)
	}
	code, _, errs := ofsroot("sandbox", "run", fw, "--layer-size", "16M", "--name", "k2", "--state", state, "--init", "/bin/escape")
	if code != 0 || !strings.Contains(errs, "unmounted what an earlier run of k left mounted") {
		t.Errorf("the next run: exit %d\n%s", code, errs)
	}
	for _, d := range kCgroup {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the killed runner's cgroup %s is left after the next run", d)
		}
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted: %q", m)
	}
}

// asNobody runs path as uid/gid 65534 and returns its output.
func asNobody(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSandboxLimits proves the limits by hitting them: a layer filler
// gets ENOSPC at --layer-size with the host's free space untouched, a
// fork bomb stops at --pids, a memory hog is killed at --memory, a
// set-user-ID root file the firmware makes gives a host user nothing;
// the host stays responsive (this test goes on), and stop leaves no
// cgroup, no process and no mount. Each attempt is made outside first,
// where it works.
func TestSandboxLimits(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	buildOfsroot(t)
	dir := t.TempDir()
	helper := sandboxHelper(t, dir)
	fw := firmwareTree(t, dir, helper)
	state := filepath.Join(dir, "state")

	// Controls, outside: the helper writes more than the layer's cap,
	// starts more processes than --pids, holds more memory than
	// --memory, and its set-user-ID root copy runs as root for nobody.
	// The filler writes until an error: outside, into a 48 MiB tmpfs
	// (more than the layer's 32 MiB), not the host's disk.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	tmp := filepath.Join(dir, "tmpfs")
	os.Mkdir(tmp, 0o755)
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=48m,mode=0755"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(tmp, unix.MNT_DETACH)
	out, err := exec.Command(helper, "setuid-copy="+filepath.Join(tmp, "su"), "fill="+filepath.Join(tmp, "big"), "forkbomb=100", "memhog=200").CombinedOutput()
	if err != nil {
		t.Fatalf("control run: %v\n%s", err, out)
	}
	if !regexpLine(string(out), "ESCAPE fill-mib=4") {
		t.Errorf("control outside: the filler did not write 40-49 MiB into a 48 MiB tmpfs:\n%s", out)
	}
	for _, want := range []string{"ESCAPE forkbomb-started=100", "ESCAPE memhog=ok 200", "ESCAPE setuid-copy=ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("control outside: no %q (the attack must work outside):\n%s", want, out)
		}
	}
	if out, err := asNobody(filepath.Join(tmp, "su"), "euid"); err != nil || !strings.Contains(out, "ESCAPE euid=0") {
		t.Errorf("control: a set-user-ID root file run by nobody on a plain mount: %v %s, want euid 0", err, out)
	}

	// Inside.
	lines, done, errb, _ := background(t, "sandbox", "run", fw, "--name", "lim", "--state", state, "--init", "/bin/escape",
		"--layer-size", "32M", "--pids", "40", "--memory", "256M", "--",
		"read=/proc/self/uid_map", "sethostname=fw-own", "hostname", "setuid-copy=/data/su", "fill=/data/big", "forkbomb=100", "pause")
	t.Cleanup(func() { ofsroot("sandbox", "stop", "lim", "--now", "--state", state) })
	var got []string
	for l := range lines {
		got = append(got, l)
		if strings.Contains(l, "ESCAPE pause=ok") {
			break
		}
	}
	all := strings.Join(got, "\n")
	// By default the firmware's root is an unprivileged uid range of
	// the host, and it names its own host.
	if !regexp.MustCompile(`ESCAPE read:/proc/self/uid_map="\s+0\s+[1-9][0-9]{5,}\s+65536\\n"`).MatchString(all) {
		t.Errorf("the firmware's uid_map does not map root to an unprivileged range:\n%s", all)
	}
	if !strings.Contains(all, "ESCAPE sethostname=ok") || !strings.Contains(all, "ESCAPE hostname=fw-own") {
		t.Errorf("the firmware could not set its own hostname:\n%s", all)
	}
	if !strings.Contains(all, "ESCAPE fill=ENOSPC") {
		t.Errorf("the layer filler did not get ENOSPC:\n%s\n%s", all, errb)
	}
	for _, l := range got {
		if n, ok := strings.CutPrefix(l, "ESCAPE fill-mib="); ok {
			if mib, _ := strconv.Atoi(n); mib < 16 || mib >= 32 {
				t.Errorf("the filler wrote %s MiB into a 32 MiB layer", n)
			}
		}
		if n, ok := strings.CutPrefix(l, "ESCAPE forkbomb-started="); ok {
			if c, _ := strconv.Atoi(n); c >= 40 {
				t.Errorf("the fork bomb started %d processes with --pids 40", c)
			}
		}
	}
	if !strings.Contains(all, "ESCAPE forkbomb=EAGAIN") {
		t.Errorf("the fork bomb was not stopped with EAGAIN:\n%s", all)
	}
	// What the instance takes of the host's disk is its layer image,
	// reserved whole when it was made: after the filler it is still
	// 32 MiB, and the state folder holds nothing else of size.
	var img unix.Stat_t
	if err := unix.Stat(filepath.Join(state, "instances/lim/layer.img"), &img); err != nil {
		t.Fatal(err)
	}
	if img.Size != 32<<20 || img.Blocks*512 > 32<<20 {
		t.Errorf("the layer image is %d bytes, %d allocated, want 32 MiB", img.Size, img.Blocks*512)
	}
	if du, err := exec.Command("du", "-s", "-B1", "-x", "--exclude=ro*", "--exclude=union", "--exclude=layer", "--exclude=layer.idmapped", state).Output(); err != nil {
		t.Error(err)
	} else if n, _ := strconv.ParseInt(strings.Fields(string(du))[0], 10, 64); n > 33<<20 {
		t.Errorf("the state folder takes %d bytes of the host's disk with a 32 MiB layer", n)
	}
	// The set-user-ID file is out of reach of a host user: the state
	// folder is root's only, and the layer and union are nosuid.
	for _, p := range []string{filepath.Join(state, "instances/lim/union/data/su"), filepath.Join(state, "instances/lim/layer/upper/data/su")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeSetuid == 0 {
			t.Errorf("%s: %v %v, want the firmware's set-user-ID file (test precondition)", p, fi, err)
			continue
		}
		if out, err := asNobody(p, "euid"); err == nil || strings.Contains(out, "euid=0") {
			t.Errorf("nobody ran the firmware's set-user-ID file %s: %v %s", p, err, out)
		}
	}
	mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if m, err := mountfs.ParseMountinfoLine(line); err == nil && strings.HasPrefix(m.Point, filepath.Join(state, "instances/lim")) {
			p := m.Point
			if f := strings.Fields(line); len(f) < 6 || !strings.Contains(f[5], "nosuid") || !strings.Contains(f[5], "nodev") {
				t.Errorf("%s is mounted without nosuid,nodev: %s", p, line)
			}
		}
	}
	// Even were the folder open to all, nosuid holds: a bind of the
	// layer outside the state folder.
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	if err := unix.Mount(filepath.Join(state, "instances/lim/layer/upper/data"), open, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if out, err := asNobody(filepath.Join(open, "su"), "euid"); err != nil || strings.Contains(out, "euid=0") || !strings.Contains(out, "euid=65534") {
		t.Errorf("the firmware's set-user-ID file on the layer's mount ran as %s (%v), want euid 65534 (nosuid)", out, err)
	}
	unix.Unmount(open, 0)

	// The cgroup, then stop: nothing left.
	cgDirs := instanceCgroups(t, "lim")
	code, _, errs := ofsroot("sandbox", "stop", "lim", "--state", state)
	if code != 0 {
		t.Errorf("stop: %s", errs)
	}
	<-done
	for _, d := range cgDirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the instance's cgroup %s is left after stop", d)
		}
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted after stop: %q", m)
	}
	if code, out, _ := ofsroot("sandbox", "diff", "lim", "--state", state); code != 0 || !strings.Contains(out, "A /data/big") || !strings.Contains(out, "A /data/su") {
		t.Errorf("diff after stop: %d %q", code, out)
	}

	// A memory hog ends at --memory (the kernel's OOM killer, inside
	// the instance's cgroup only); without a user namespace too.
	code, out2, errs := ofsroot("sandbox", "run", fw, "--name", "lim", "--state", state, "--init", "/bin/escape", "--memory", "64M", "--userns=false", "--", "memhog=200")
	if code != 128+9 || strings.Contains(out2, "memhog=ok") {
		t.Errorf("memory hog with --memory 64M: exit %d, want %d (killed)\n%s\n%s", code, 128+9, out2, errs)
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("still mounted after the hog: %q", m)
	}
}

// instanceCgroups finds a running instance's cgroup folders.
func instanceCgroups(t *testing.T, name string) []string {
	t.Helper()
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	self, _ := os.ReadFile("/proc/self/cgroup")
	dirs, _, err := sandbox.CgroupDirs(string(mi), string(self), name, func(p string) string {
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.controllers"))
		return string(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the instance's cgroup %s does not exist while it runs: %v", d, err)
		}
	}
	return dirs
}

// TestSandboxConsoleUserNS: run from a terminal, the firmware's root in
// its user namespace opens /dev/console (the terminal, lent to it for the
// run) and writes to it; afterwards the terminal is its owner's again.
func TestSandboxConsoleUserNS(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	buildOfsroot(t)
	dir := t.TempDir()
	fw := firmwareTree(t, dir, sandboxHelper(t, dir))
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	var before unix.Stat_t
	unix.Stat(slavePath, &before)
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil || bytes.Contains(all, []byte("through-console")) {
				got <- string(all)
				return
			}
		}
	}()
	cmd := exec.Command(ofsrootBin, "sandbox", "run", fw, "--name", "con", "--state", filepath.Join(dir, "state"), "--layer-size", "16M", "--init", "/bin/escape", "--", "open=/dev/console", "write=/dev/console:through-console")
	cmd.Stdin = slave
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ESCAPE open:/dev/console=ok") {
		t.Errorf("the firmware could not open /dev/console:\n%s", out.String())
	}
	var after unix.Stat_t
	unix.Stat(slavePath, &after)
	// Closing the last slave ends the reader (EIO) if nothing came.
	slave.Close()
	if s := <-got; !strings.Contains(s, "through-console") {
		t.Errorf("the terminal did not get the firmware's write: %q", s)
	}
	if after.Uid != before.Uid {
		t.Errorf("the terminal is owned by uid %d after the run, was %d", after.Uid, before.Uid)
	}
}
