package maintenance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// DefaultBinds are bound into the root for a chrooted command.
var DefaultBinds = []string{"/proc", "/sys", "/dev", "/run"}

// DefaultPath is the PATH searched inside the root.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options is one maintenance run.
type Options struct {
	// Root is the real root's mount point (/mnt/root-RO); "/" when the
	// real root is / itself (a degraded or plain read-only boot).
	Root string
	// Command and its arguments, run inside Root; empty runs $SHELL
	// (if Root has it) or /bin/sh.
	Command []string
	// Binds are bound (recursively) from the system into Root before
	// the command runs; nil means DefaultBinds. Folders Root lacks are
	// skipped with a note.
	Binds  []string
	Env    []string // nil: this process's environment
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Log gets notes (skipped binds, what runs); nil drops them.
	Log func(format string, args ...any)
}

// Run runs o.Command chrooted into o.Root with o.Root writable, in a
// private mount namespace, and makes o.Root read-only again when the
// command ends, fails, or this process gets SIGINT, SIGTERM or SIGHUP
// (which are passed on to the command). The command's own failure is
// returned as an *exec.ExitError.
//
// Side effects: see Writable; binds o.Binds into o.Root (inside the
// namespace only); starts the command, killed if this thread dies.
func Run(o Options) error {
	if o.Root == "" {
		return errors.New("maintenance: no root given")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	binds := o.Binds
	if binds == nil {
		binds = DefaultBinds
	}
	argv := o.Command
	if len(argv) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" || !isExecutable(filepath.Join(root, sh)) {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	path, err := lookPathIn(root, argv[0])
	if err != nil {
		return err
	}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(env, "OFSROOT_MAINTENANCE=1")

	var mu sync.Mutex
	var proc *os.Process
	forward := func(s os.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if proc != nil {
			proc.Signal(s)
		}
	}
	return session(root, forward, func() (func() error, error) {
		if root != "/" {
			for _, b := range binds {
				dst := filepath.Join(root, b)
				if st, err := os.Stat(dst); err != nil || !st.IsDir() {
					logf("not binding %s: %s has no such folder", b, root)
					continue
				}
				if err := mountfs.Mount(b, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
					return nil, fmt.Errorf("binding %s into the maintenance root: %w", b, err)
				}
			}
		}
		cmd := &exec.Cmd{
			Path: path, Args: argv, Env: env, Dir: "/",
			Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr,
			SysProcAttr: &syscall.SysProcAttr{Chroot: root, Pdeathsig: syscall.SIGKILL},
		}
		logf("running %s in %s, writable", strings.Join(argv, " "), root)
		mu.Lock()
		err := cmd.Start()
		proc = cmd.Process
		mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("starting %s in %s: %w", path, root, err)
		}
		logf("writable for PID %d and what it starts; others' mounts stay read-only, but a root process with CAP_SYS_PTRACE can write it through /proc/%d/root", cmd.Process.Pid, cmd.Process.Pid)
		return func() error {
			err := cmd.Wait()
			mu.Lock()
			proc = nil
			mu.Unlock()
			return err
		}, nil
	})
}

// lookPathIn finds name as the chrooted command will: absolute names as
// they are, others along DefaultPath inside root.
func lookPathIn(root, name string) (string, error) {
	if strings.Contains(name, "/") {
		if !isExecutable(filepath.Join(root, name)) {
			return "", fmt.Errorf("%s: no such program in %s", name, root)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(DefaultPath) {
		p := filepath.Join(dir, name)
		if isExecutable(filepath.Join(root, p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in %s of %s", name, DefaultPath, root)
}

// isExecutable checks p; an absolute symlink inside a chroot is
// resolved on the host, so a dangling symlink still counts.
func isExecutable(p string) bool {
	st, err := os.Stat(p)
	if err != nil {
		lst, lerr := os.Lstat(p)
		return lerr == nil && lst.Mode()&os.ModeSymlink != 0
	}
	return st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
