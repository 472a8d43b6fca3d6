package maintenance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
)

// attacker is a process outside the maintenance namespace (started from
// the test's own namespace, where the real root is mounted read-only),
// run with a set of credentials.
type attacker struct {
	name string
	wrap []string // setpriv words before the shell; none: full root
}

var attackers = []attacker{
	{"root", nil},
	{"root without CAP_SYS_PTRACE", []string{"setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"}},
	{"nobody", []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}},
}

// tryWrites runs a shell as a that tries to create each path and prints
// those it could.
func (a attacker) tryWrites(t *testing.T, paths []string) map[string]bool {
	t.Helper()
	args := append(append([]string(nil), a.wrap...), "dash", "-c", `for f; do (echo outside > "$f") 2>/dev/null && echo "$f"; done; true`, "-")
	args = append(args, paths...)
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		t.Fatalf("%s: %v", a.name, err)
	}
	ok := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		ok[l] = true
	}
	return ok
}

// TestOutsideWritesThroughProc: while `ofsctl maint` runs a command, what
// a process outside can write on the real root through /proc, measured
// on the device afterwards. The command's own root, working folder and
// open files lead to the writable mount for a root process with
// CAP_SYS_PTRACE, on every kernel (see the package doc), and setns with
// CAP_SYS_ADMIN gets in; a root process without CAP_SYS_PTRACE and
// another user get nowhere. The
// maintenance thread of ofsctl was a second way in
// (/proc/PID/task/TID/root) until it learnt to wait outside: the first
// pass, with that turned off, shows the write through it succeeding.
func TestOutsideWritesThroughProc(t *testing.T) {
	mountfstest.NeedTools(t, "setpriv", "nsenter")
	for _, leave := range []bool{false, true} {
		t.Run(fmt.Sprintf("leaveWhileWaiting=%v", leave), func(t *testing.T) {
			defer func(v bool) { leaveWhileWaiting = v }(leaveWhileWaiting)
			leaveWhileWaiting = leave
			mnt := realRoot(t)
			before := overlaydifftest.Snapshot(t, mnt)

			stdinR, stdinW := pipe(t)
			stdoutR, stdoutW := pipe(t)
			done := make(chan error, 1)
			join := overlaydifftest.Joiner(t)
			go func() {
				if err := join(); err != nil {
					done <- err
					stdoutW.Close()
					return
				}
				done <- Run(Options{Root: mnt, Command: []string{"sh", "-c", "exec 3>/etc/log; echo $$; read x"}, Env: []string{"PATH=/bin"},
					Stdin: stdinR, Stdout: stdoutW, Stderr: stdoutW})
				stdoutW.Close()
			}()
			line, _ := bufio.NewReader(stdoutR).ReadString('\n')
			cmdPID, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				t.Fatalf("command said %q; Run: %v", line, <-done)
			}
			var tasks []string
			ents, _ := os.ReadDir("/proc/self/task")
			for _, e := range ents {
				tasks = append(tasks, fmt.Sprintf("/proc/%d/task/%s/root%s/etc/thread-%%s-%s", os.Getpid(), e.Name(), mnt, e.Name()))
			}

			wrote := map[string]bool{"/etc/log": true} // device path → written (the command makes /etc/log)
			for i, a := range attackers {
				paths := map[string]string{ // what → path
					"root": fmt.Sprintf("/proc/%d/root/etc/root-%d", cmdPID, i),
					"cwd":  fmt.Sprintf("/proc/%d/cwd/etc/cwd-%d", cmdPID, i),
					"fd":   fmt.Sprintf("/proc/%d/fd/3", cmdPID), // the command's /etc/log
					"mnt":  filepath.Join(mnt, fmt.Sprintf("etc/direct-%d", i)),
				}
				var list []string
				for _, p := range paths {
					list = append(list, p)
				}
				for _, tp := range tasks {
					list = append(list, strings.Replace(tp, "%s", strconv.Itoa(i), 1))
				}
				ok := a.tryWrites(t, list)
				threadWrites := 0
				for p := range ok {
					if strings.Contains(p, "/task/") {
						threadWrites++
						wrote["/etc/"+filepath.Base(p)] = true
					}
				}
				want := map[string]bool{}
				if a.wrap == nil { // CAP_SYS_PTRACE: the command's links lead in
					want["root"], want["cwd"], want["fd"] = true, true, true
				}
				for what, p := range paths {
					if ok[p] != want[what] {
						t.Errorf("%s writing through %s (%s): wrote %v, want %v", a.name, what, p, ok[p], want[what])
					}
					if ok[p] && what != "fd" {
						wrote["/etc/"+filepath.Base(p)] = true
					}
				}
				wantThread := 0
				if a.wrap == nil && !leave {
					wantThread = 1 // the maintenance thread
				}
				if threadWrites != wantThread {
					t.Errorf("%s: wrote through %d of ofsctl's threads, want %d", a.name, threadWrites, wantThread)
				}
			}
			// setns into the namespace needs CAP_SYS_ADMIN, which could
			// also remount the real root read-write directly.
			if out, err := exec.Command("nsenter", "-t", strconv.Itoa(cmdPID), "-m", "dash", "-c", "echo outside > "+mnt+"/etc/setns").CombinedOutput(); err != nil {
				t.Errorf("nsenter into the maintenance namespace as root: %v %s (it should get in: CAP_SYS_ADMIN)", err, out)
			} else {
				wrote["/etc/setns"] = true
			}
			stdinW.Write([]byte("\n"))
			io.Copy(io.Discard, stdoutR)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			readOnlyAgain(t, mnt)
			var changes []string
			for p := range wrote {
				changes = append(changes, "+"+p)
			}
			sort.Strings(changes)
			overlaydifftest.Expect(t, before, overlaydifftest.Snapshot(t, mnt), changes...)
			t.Logf("written from outside: %v", changes)
		})
	}
}
