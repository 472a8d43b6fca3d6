package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff/overlaydifftest"
)

// TestMaintStillWritable: when the real root cannot be made read-only
// again — a program the maintenance left running holds a file open for
// writing, or holds a file that was replaced — maint says so and names
// what to run, and never claims the root is read-only again. The command
// it names then works once that program is gone.
func TestMaintStillWritable(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		exit         int // the command's own status
	}{
		// The background program's standard files are all redirected, so
		// that only it, not ofsctl's output pipes, outlives the shell.
		{"open for writing", "sleep 600 >/etc/held 2>&1 <&- & echo $!", 0},
		{"replaced while open", "echo new >/etc/old.new; sleep 600 </etc/old >&- 2>&- & mv /etc/old.new /etc/old; echo $!; exit 3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mountfstest.PrivateNamespace(t)
			mountfstest.NeedTools(t, "dash", "sleep", "mv")
			tree := t.TempDir()
			dash, _ := exec.LookPath("dash")
			sleep, _ := exec.LookPath("sleep")
			mv, _ := exec.LookPath("mv")
			overlaydifftest.ProgramsInto(t, tree, dash, sleep, mv)
			must(t, os.MkdirAll(tree+"/etc", 0o755))
			must(t, os.MkdirAll(tree+"/dev", 0o755)) // dash starts background jobs on /dev/null
			must(t, os.WriteFile(tree+"/etc/old", []byte("old\n"), 0o644))
			mnt, _ := overlaydifftest.Ext4(t, tree)
			defer func(r io.Reader) { maintStdin = r }(maintStdin)
			maintStdin = strings.NewReader("")

			code, out, errOut := ofsctl(t, "maint", "--root", mnt, "--", dash, "-c", "PATH="+dirOf(sleep)+"; "+tc.script)
			pid, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("the command printed %q, not the background pid (exit %d, %s)", out, code, errOut)
			}
			stopped := false
			stop := func() {
				if stopped {
					return
				}
				stopped = true
				syscall.Kill(pid, syscall.SIGKILL)
				for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(10 * time.Millisecond) // the kill is asynchronous: wait until the pid is gone
				}
			}
			defer stop()

			t.Logf("exit %d, stderr:\n%s", code, errOut)
			if code == 0 {
				t.Errorf("exit 0 with the root still writable")
			}
			if strings.Contains(errOut, "is read-only again") {
				t.Errorf("claims read-only again:\n%s", errOut)
			}
			for _, want := range []string{"the real root is still WRITABLE", "device or resource busy", "fuser -vm " + mnt,
				"a root process with CAP_SYS_PTRACE can write it through /proc/"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if tc.exit != 0 && !strings.Contains(errOut, "exit status "+strconv.Itoa(tc.exit)) {
				t.Errorf("the command's own exit status %d is not reported:\n%s", tc.exit, errOut)
			}
			// It is true: the filesystem is still writable underneath.
			if m := overlaydifftest.MountInfo(t, mnt); !strings.HasSuffix(m, " rw") {
				t.Errorf("the filesystem is %q, though maint said it stays writable", m)
			}
			run := regexp.MustCompile("`(mount -o remount,ro [^`]+)`").FindStringSubmatch(errOut)
			if run == nil {
				t.Fatalf("no command to run in:\n%s", errOut)
			}
			// While the program runs, the named command is refused too...
			if o, err := exec.Command("sh", "-c", run[1]).CombinedOutput(); err == nil {
				t.Errorf("%s worked while the program still runs (%s): then maint should have", run[1], o)
			}
			// ...and once it is stopped, it works.
			stop()
			if o, err := exec.Command("sh", "-c", run[1]).CombinedOutput(); err != nil {
				t.Fatalf("%s after the program stopped: %v %s", run[1], err, o)
			}
			if err := os.WriteFile(mnt+"/after", nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("writing after the named command: %v, want EROFS", err)
			}
		})
	}
}

func dirOf(p string) string { return p[:strings.LastIndex(p, "/")] }
