package maintenance

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
)

// realRoot makes a small real root on ext4 (with dash and rm, so a chroot
// can run them) mounted read-only, and returns its mount point.
func realRoot(t *testing.T) string {
	t.Helper()
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "dash", "rm")
	tree := t.TempDir()
	dash, _ := exec.LookPath("dash")
	rm, _ := exec.LookPath("rm")
	overlaydifftest.ProgramsInto(t, tree, dash, rm)
	must(t, os.MkdirAll(filepath.Join(tree, "bin"), 0o755))
	if _, err := os.Lstat(filepath.Join(tree, "bin/sh")); err != nil {
		must(t, os.Symlink(dash, filepath.Join(tree, "bin/sh")))
	}
	for _, d := range []string{"proc", "sys", "dev", "etc"} { // no /run: skipped with a note
		must(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(tree, "etc/old"), []byte("old\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(tree, "etc/keep"), []byte("keep\n"), 0o644))
	mnt, _ := overlaydifftest.Ext4(t, tree)
	return mnt
}

// pipe is an OS pipe: exec.Cmd waits for copying goroutines with
// anything else.
func pipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	must(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readOnlyAgain(t *testing.T, mnt string) {
	t.Helper()
	line := overlaydifftest.MountInfo(t, mnt)
	f := strings.Fields(line)
	if len(f) < 6 || !strings.HasPrefix(f[5], "ro") || !strings.HasSuffix(line, " ro") {
		t.Errorf("after maintenance %s is %q, want ro mount and ro filesystem", mnt, line)
	}
	if err := os.WriteFile(filepath.Join(mnt, "after"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing after maintenance: %v, want EROFS", err)
	}
}

// TestRunChangesExactlyWhatWasAsked runs a command in the chrooted,
// writable real root and checks, while it runs, that the real root
// stays read-only outside; then that exactly the asked changes are on
// the device and it is read-only again.
func TestRunChangesExactlyWhatWasAsked(t *testing.T) {
	mnt := realRoot(t)
	before := overlaydifftest.Snapshot(t, mnt)

	stdinR, stdinW := pipe(t)
	stdoutR, stdoutW := pipe(t)
	var notes []string
	done := make(chan error, 1)
	join := overlaydifftest.Joiner(t)
	go func() {
		if err := join(); err != nil {
			done <- err
			stdoutW.Close()
			return
		}
		done <- Run(Options{
			Root:    mnt,
			Command: []string{"sh", "-c", "echo new > /etc/new && rm /etc/old && test -e /proc/self/mountinfo && test -c /dev/null && echo ready && read x && echo got $x"},
			Env:     []string{"PATH=/usr/bin:/bin"},
			Stdin:   stdinR, Stdout: stdoutW, Stderr: stdoutW,
			Log: func(f string, a ...any) { notes = append(notes, f) },
		})
		stdoutW.Close()
	}()
	out := bufio.NewReader(stdoutR)
	line, err := out.ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("command said %q (%v), want ready; Run: %v", line, err, <-done)
	}
	// The command is running with the root writable: outside, the mount
	// is still read-only and refuses writes.
	if err := os.WriteFile(filepath.Join(mnt, "outside"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("writing from outside during maintenance: %v, want EROFS", err)
	}
	if f := strings.Fields(overlaydifftest.MountInfo(t, mnt)); len(f) < 6 || !strings.HasPrefix(f[5], "ro") {
		t.Errorf("outside, during maintenance, the mount is %q, want ro", f)
	}
	stdinW.Write([]byte("bye\n"))
	rest, _ := io.ReadAll(out)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v (output %q)", err, rest)
	}
	if string(rest) != "got bye\n" {
		t.Errorf("output %q", rest)
	}
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), "not binding") {
		t.Errorf("notes %q: want one about the missing /run", notes)
	}
	readOnlyAgain(t, mnt)
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, mnt), "+/etc/new", "-/etc/old")
}

// TestRunFailsReadOnlyAgain: a failing command's status comes back and
// the root is read-only again.
func TestRunFailsReadOnlyAgain(t *testing.T) {
	mnt := realRoot(t)
	before := overlaydifftest.Snapshot(t, mnt)
	err := Run(Options{Root: mnt, Command: []string{"/bin/sh", "-c", "exit 7"}, Env: []string{}})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("Run = %v, want exit status 7", err)
	}
	readOnlyAgain(t, mnt)
	overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, mnt))

	if err := Run(Options{Root: mnt, Command: []string{"no-such-program"}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing program: %v", err)
	}
	if err := Run(Options{Root: filepath.Dir(mnt), Command: []string{"/bin/sh"}}); err == nil {
		t.Errorf("a folder that is no mount point was accepted")
	}
}

// TestRunSignal: a SIGTERM to ofsctl reaches the command, and the root
// is read-only again afterwards.
func TestRunSignal(t *testing.T) {
	mnt := realRoot(t)
	handed := make(chan chan<- os.Signal, 1)
	notify = func(c chan<- os.Signal, _ ...os.Signal) { handed <- c }
	defer func() { notify = signalNotify }()
	stdoutR, stdoutW := pipe(t)
	stdinR, stdinW := pipe(t)
	defer stdinW.Close()
	done := make(chan error, 1)
	join := overlaydifftest.Joiner(t)
	go func() {
		if err := join(); err != nil {
			done <- err
			stdoutW.Close()
			return
		}
		done <- Run(Options{Root: mnt, Command: []string{"/bin/sh", "-c", "echo x > /etc/partial; echo ready; read x"}, Stdin: stdinR, Stdout: stdoutW})
		stdoutW.Close()
	}()
	if line, _ := bufio.NewReader(stdoutR).ReadString('\n'); line != "ready\n" {
		t.Fatalf("command said %q; Run: %v", line, <-done)
	}
	sigs := <-handed
	sigs <- unix.SIGTERM
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "interrupted by terminated") || !strings.Contains(err.Error(), "signal: terminated") {
		t.Errorf("Run = %v, want the command killed by SIGTERM and that said", err)
	}
	readOnlyAgain(t, mnt)
}
