// Package sandbox runs a firmware's own init, as root, as PID 1 of new
// namespaces inside a prepared root folder (usually an overlay), the way
// firmwared runs a drone's firmware on a PC and systemd-nspawn runs an OS
// tree, so that the firmware cannot harm the machine it runs on:
//
//   - new mount (all mounts private, recursively), PID, UTS, IPC and cgroup
//     namespaces, and a network namespace with only lo up when asked;
//   - the root entered with pivot_root(2) and the old root detached (in an
//     initramfs, whose rootfs cannot be pivoted away, through a small
//     tmpfs; every other mount of the initramfs is detached first);
//   - a fresh /proc with kcore, kmsg, keys, kallsyms and friends hidden
//     (/dev/null bound over them, empty read-only tmpfs over folders), and
//     sysrq-trigger, /proc/sys, /proc/bus, /proc/fs, /proc/irq read-only
//     (writing sysrq-trigger fails with EROFS); /sys read-only (a fresh
//     sysfs, so it shows the sandbox's own network), the cgroup2 tree
//     read-only; a minimal /dev on a tmpfs (null zero full random urandom
//     tty console, its own devpts and ptmx, shm) plus the devices
//     Config.Devices names; the root itself is nodev, so a device node the
//     firmware carries elsewhere opens nothing;
//   - capabilities dropped from the bounding, effective, permitted,
//     inheritable and ambient sets: see Dropped. CAP_SYS_ADMIN is dropped,
//     so the firmware cannot mount anything (no real block device, no
//     fresh devtmpfs, no remount of /proc/sys); CAP_MKNOD too, so it cannot
//     make a node for the real disk;
//   - PR_SET_NO_NEW_PRIVS; PR_SET_PDEATHSIG (SIGKILL) so the firmware
//     dies with its supervisor;
//   - a seccomp filter (BuildFilter, Denied): keyring, kexec, bpf, perf,
//     module, clock, mount-family, swap, reboot and raw I/O calls and
//     nested user namespaces refused with EPERM, clone3 with ENOSYS, for
//     each architecture the kernel may run the firmware as;
//   - no descriptor but 0, 1 and 2 (close_range before the exec);
//   - with Config.UserNS, a user namespace whose root is an unprivileged
//     uid range of the host (the root's layers idmapped to it: IDMapped,
//     MountOverlayAs); device nodes are then bound, not made, and
//     CAP_SYS_ADMIN of its own namespace is kept (its hostname);
//   - with Config.Cgroup, its own cgroup (NewCgroup: memory.max,
//     pids.max, v2 or v1), entered before it runs anything;
//   - an AppArmor profile where the kernel has AppArmor (PrepareAppArmor,
//     Config.AppArmorProfile; written as the exec label before the exec);
//   - the hostname set; the console (or the caller's terminal) passed
//     through as /dev/console and standard input and output.
//
// Go cannot fork without exec, so Start re-executes the current program
// (/proc/self/exe) in the new namespaces with a marker in its
// environment; every main that uses this package must call
// RunChildIfRequested first thing. The child does the mounts, pivot_root,
// capability drops and execs the firmware's init.
//
// Supervisor reaps, logs how the firmware ended and restarts it or gives
// up by a policy. Package store (pkg/sandbox/store) is the desktop
// runner's state: a firmware identified by a hash, an instance by a short
// name, each with its own writable layer.
package sandbox

import (
	"fmt"
	"github.com/ofsroot/ofsroot/internal/smalljson"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Net is the network the firmware gets.
type Net string

const (
	// NetPrivate is a new network namespace with only lo, up.
	NetPrivate Net = "private"
	// NetHost shares the host's network (the firmware keeps no
	// CAP_NET_ADMIN or CAP_NET_RAW then).
	NetHost Net = "host"
)

// ParseNet reads "private" or "host".
func ParseNet(s string) (Net, error) {
	switch n := Net(strings.ToLower(s)); n {
	case NetPrivate, NetHost:
		return n, nil
	}
	return "", fmt.Errorf("network %q: want private or host", s)
}

// Bind is a host path made visible inside the root.
type Bind struct {
	Source   string // host path
	Target   string // path inside the root
	ReadOnly bool
}

// Config says what to run and how.
type Config struct {
	// Root is the prepared root folder. It becomes "/".
	Root string
	// Init is the program to run, as a path inside Root; Args are its
	// arguments after argv[0], Env its whole environment
	// ("container=ofsroot" is added, systemd's convention for "you run in
	// a container").
	Init string
	Args []string
	Env  []string
	// Hostname is set in the new UTS namespace ("" keeps "sandbox").
	Hostname string
	Net      Net
	// Devices are host device nodes (/dev/ttyS1) recreated in the
	// sandbox's /dev with the same name, type and numbers.
	Devices []string
	// Console is a host terminal bound over the sandbox's /dev/console
	// ("" for none: /dev/console is then absent).
	Console string
	// Binds are extra host paths bound into the root (after /dev).
	Binds []Bind
	// AppArmorProfile is the profile the firmware is confined by where
	// the kernel has AppArmor ("" = DefaultProfile).
	AppArmorProfile string
	// Cgroup, when set, is the cgroup the firmware runs in: the child
	// is moved into it before it does anything (it waits on a pipe,
	// its descriptor 3, until then).
	Cgroup *Cgroup `json:"-"`
	// UserNS, when set, runs the firmware in a new user namespace with
	// this mapping: its root is an unprivileged uid of the host. The
	// root's layers must be idmapped to the same range (IDMapped).
	UserNS *IDMap `json:",omitempty"`
	// WaitParent tells the child to wait for that go-ahead.
	WaitParent bool `json:",omitempty"`
}

// DefaultHostname is the sandbox's hostname when none is asked for.
const DefaultHostname = "sandbox"

// childEnv is the marker that makes RunChildIfRequested take over; its
// value is the child's configuration. The name has a dot on purpose: the
// kernel hands unknown key=value command-line words to PID 1 as its
// environment, except names with a dot (module parameters). So no word
// on a device's command line can make the real init think it is a
// sandbox child and exit.
const childEnv = "ofsroot.sandbox-child"

// Cloneflags are the namespaces a sandbox gets.
func (c *Config) Cloneflags() uintptr {
	f := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP)
	if c.Net != NetHost {
		f |= unix.CLONE_NEWNET
	}
	return f
}

// Check says what is wrong with c before anything is started.
func (c *Config) Check() error {
	if c.Root == "" || !strings.HasPrefix(c.Root, "/") {
		return fmt.Errorf("sandbox root %q: want an absolute path", c.Root)
	}
	fi, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("sandbox root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sandbox root %s: not a folder", c.Root)
	}
	if !strings.HasPrefix(c.Init, "/") {
		return fmt.Errorf("sandbox init %q: want an absolute path inside the root", c.Init)
	}
	if c.Net != "" && c.Net != NetHost && c.Net != NetPrivate {
		return fmt.Errorf("sandbox network %q: want private or host", c.Net)
	}
	return nil
}

// Start starts the child: this program re-executed in new namespaces
// with stdin, stdout and stderr as given (nil: /dev/null). Wait for it
// with a Supervisor or the returned process's Wait.
//
// Side effects: everything the package comment lists, in the child's own
// namespaces only; nothing changes for the caller. (os.StartProcess, not
// os/exec: the /init links this package and stays small.)
func Start(c Config, stdin, stdout, stderr *os.File) (*os.Process, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.Net == "" {
		c.Net = NetPrivate
	}
	c.WaitParent = c.Cgroup != nil
	blob, err := smalljson.Marshal(c)
	if err != nil {
		return nil, err
	}
	files := []*os.File{stdin, stdout, stderr}
	for i, f := range files {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, err
			}
			defer null.Close()
			files[i] = null
		}
	}
	sys := &syscall.SysProcAttr{
		Cloneflags: c.Cloneflags(),
		// The firmware dies with its supervisor; it survives the
		// exec of its init (not set-user-ID).
		Pdeathsig: syscall.SIGKILL,
		// A session of its own: the firmware's init expects to
		// be a session leader, and a terminal that is not its
		// controlling terminal cannot be pushed input (TIOCSTI)
		// without CAP_SYS_ADMIN.
		Setsid: true,
	}
	if c.UserNS != nil {
		sys.Cloneflags |= syscall.CLONE_NEWUSER
		sys.UidMappings, sys.GidMappings = c.UserNS.uid(), c.UserNS.uid()
		sys.GidMappingsEnableSetgroups = true
		// The child is still the host's root (unmapped inside, so
		// without capabilities there) until it becomes uid 0 of the
		// new namespace.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	var goAhead *os.File
	if c.Cgroup != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		goAhead = w
		defer w.Close()
		files = append(files, r)
	}
	p, err := os.StartProcess("/proc/self/exe", []string{"ofsroot-sandbox", c.Root}, &os.ProcAttr{
		Env:   []string{childEnv + "=" + string(blob)},
		Files: files,
		Sys:   sys,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox for %s: %w", c.Root, err)
	}
	if c.Cgroup != nil {
		if err := c.Cgroup.Add(p.Pid); err != nil {
			p.Kill()
			p.Wait()
			return nil, fmt.Errorf("sandbox for %s: %w", c.Root, err)
		}
		if _, err := goAhead.Write([]byte{1}); err != nil {
			p.Kill()
			p.Wait()
			return nil, fmt.Errorf("sandbox for %s: the child is gone: %w", c.Root, err)
		}
	}
	return p, nil
}

// ChildError is the child's report of a failed setup step; it exits with
// ChildFailed after printing it.
type ChildError struct {
	Step string
	Err  error
}

func (e *ChildError) Error() string { return fmt.Sprintf("sandbox: %s: %v", e.Step, e.Err) }
func (e *ChildError) Unwrap() error { return e.Err }

// ChildFailed is the child's exit status when the sandbox could not be
// set up (the firmware never ran).
const ChildFailed = 125

// IsChildFailure says whether an ending is a setup failure of the
// sandbox rather than the firmware's own.
func IsChildFailure(ws unix.WaitStatus) bool {
	return ws.Exited() && ws.ExitStatus() == ChildFailed
}
