package sandbox

import (
	"errors"
	"fmt"
	"github.com/ofsroot/ofsroot/internal/smalljson"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// RunChildIfRequested turns this process into the sandbox child when
// Start started it (the marker is in the environment): it sets the
// sandbox up and execs the firmware's init, or prints why it could not
// and exits with ChildFailed. Otherwise it returns at once. Every main
// that may start a sandbox calls it first.
func RunChildIfRequested() {
	runHolderIfRequested()
	blob, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var c Config
	if err := smalljson.Unmarshal([]byte(blob), &c); err != nil {
		fmt.Fprintf(os.Stderr, "ofsroot sandbox: bad configuration from the parent: %v\n", err)
		os.Exit(ChildFailed)
	}
	err := childMain(c)
	fmt.Fprintf(os.Stderr, "ofsroot %v\n", err)
	os.Exit(ChildFailed)
}

// childMain runs in the new namespaces, as their PID 1. It returns only
// on failure.
func childMain(c Config) error {
	// Capabilities, no_new_privs and the exec are per thread: all on
	// this one.
	runtime.LockOSThread()
	step := func(name string, err error) error {
		if err != nil {
			return &ChildError{Step: name, Err: err}
		}
		return nil
	}
	if c.WaitParent {
		if err := step("wait for the parent to put it in its cgroup", waitParent()); err != nil {
			return err
		}
	}
	// Nothing mounted from here on may propagate back to the host.
	if err := step("make every mount private (mount --make-rprivate /)", mountfs.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")); err != nil {
		return err
	}
	if err := step("bind the root onto itself", bindRoot(c.Root, c.UserNS != nil)); err != nil {
		return err
	}
	if err := step("make /dev", setupDev(c)); err != nil {
		return err
	}
	if err := step("mount /proc", setupProc(c.Root)); err != nil {
		return err
	}
	if err := step("mount /sys read-only", setupSys(c.Root, c.UserNS != nil && c.Net == NetHost)); err != nil {
		return err
	}
	for _, b := range c.Binds {
		if err := step("bind "+b.Source+" to "+b.Target, bindInto(c.Root, b)); err != nil {
			return err
		}
	}
	if err := step("pivot_root into "+c.Root, enterRoot(c.Root)); err != nil {
		return err
	}
	if err := step("sethostname "+c.Hostname, unix.Sethostname([]byte(c.Hostname))); err != nil {
		return err
	}
	if c.Net != NetHost {
		if err := step("ip link set lo up", loUp()); err != nil {
			return err
		}
	}
	if c.AppArmorProfile != "" {
		if err := step("apparmor exec label "+c.AppArmorProfile, setExecLabel(c.AppArmorProfile)); err != nil {
			return err
		}
	}
	if err := step("drop capabilities", dropCapabilities(c.Net, c.UserNS != nil)); err != nil {
		return err
	}
	if err := step("prctl(PR_SET_NO_NEW_PRIVS)", unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)); err != nil {
		return err
	}
	// Pdeathsig was set by the parent at clone; set it again in case the
	// parent's thread is gone already (the kernel checks at this call).
	if err := step("prctl(PR_SET_PDEATHSIG)", unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)); err != nil {
		return err
	}
	// Nothing inherited: a descriptor the caller left open (exec 7</)
	// would be a way to the host's files through /proc/self/fd/7.
	if err := step("close every descriptor above 2 (close_range)", closeInherited()); err != nil {
		return err
	}
	// Last: the filter refuses mount and pivot_root, which the steps
	// above use.
	if err := step("seccomp filter", loadSeccomp()); err != nil {
		return err
	}
	env := c.Env
	if !hasEnv(env, "container") {
		env = append(env, "container=ofsroot")
	}
	argv := append([]string{c.Init}, c.Args...)
	err := unix.Exec(c.Init, argv, env)
	return &ChildError{Step: "exec " + c.Init, Err: fmt.Errorf("%w (is it an executable for this machine inside the root?)", err)}
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// bindRoot makes the root a mount point of its own (pivot_root needs
// one) and nodev: a device node the firmware ships or writes anywhere
// but the sandbox's own /dev opens nothing.
func bindRoot(root string, userns bool) error {
	if err := mountfs.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	var st unix.Statfs_t
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NODEV)
	if userns {
		// A mount from the host's namespace keeps its nosuid in a
		// user namespace: the remount must say it again (EPERM
		// otherwise). no_new_privs makes set-user-ID moot anyway.
		flags |= unix.MS_NOSUID
	}
	if unix.Statfs(root, &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
		flags |= unix.MS_RDONLY
	}
	return mountfs.Mount("", root, "", flags, "")
}

// devNodes are the sandbox's /dev: name, char major, minor, mode.
var devNodes = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

func setupDev(c Config) error {
	dev := filepath.Join(c.Root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := mountfs.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return err
	}
	for _, n := range devNodes {
		p := filepath.Join(dev, n.name)
		if c.UserNS != nil {
			// No mknod in a user namespace: the host's node, bound.
			if err := bindNode("/dev/"+n.name, p); err != nil {
				return err
			}
			continue
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod %s c %d %d: %w", p, n.major, n.minor, err)
		}
		// mknod obeys the umask.
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	for _, d := range c.Devices {
		if err := copyDevice(d, dev, c.UserNS != nil); err != nil {
			return err
		}
	}
	if c.Console != "" {
		p := filepath.Join(dev, "console")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return err
		}
		if err := mountfs.Mount(c.Console, p, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	if err := mountfs.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := mountfs.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=65536k"); err != nil {
		return err
	}
	for _, l := range [][2]string{
		{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	} {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// copyDevice recreates host device node src in dev, under its path
// relative to /dev (or its base name).
func copyDevice(src, dev string, userns bool) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return fmt.Errorf("allowed device %s: %w", src, err)
	}
	kind := st.Mode & unix.S_IFMT
	if kind != unix.S_IFCHR && kind != unix.S_IFBLK {
		return fmt.Errorf("allowed device %s: not a device node", src)
	}
	rel, err := filepath.Rel("/dev", src)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = filepath.Base(src)
	}
	dst := filepath.Join(dev, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if userns {
		return bindNode(src, dst)
	}
	if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
		return fmt.Errorf("mknod %s: %w", dst, err)
	}
	return os.Chmod(dst, os.FileMode(st.Mode&0o777))
}

// bindNode binds host device node src onto a new file dst.
func bindNode(src, dst string) error {
	if err := os.WriteFile(dst, nil, 0o600); err != nil {
		return err
	}
	return mountfs.Mount(src, dst, "", unix.MS_BIND, "")
}

// procMasked are hidden: /dev/null over files, an empty read-only tmpfs
// over folders (the lists runc and nspawn use).
var procMasked = []string{
	"kcore", "kmsg", "keys", "timer_list", "latency_stats", "sched_debug",
	"acpi", "asound", "scsi", "kallsyms",
}

// procReadOnly are bound read-only onto themselves. sysrq-trigger is
// write-only: read-only makes every open for writing fail with EROFS.
var procReadOnly = []string{"sys", "sysrq-trigger", "bus", "fs", "irq"}

func setupProc(root string) error {
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := mountfs.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	null := filepath.Join(root, "dev/null")
	for _, name := range procMasked {
		p := filepath.Join(proc, name)
		fi, err := os.Stat(p)
		if err != nil {
			continue // not in this kernel
		}
		if fi.IsDir() {
			err = mountfs.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = mountfs.Mount(null, p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("hiding /proc/%s: %w", name, err)
		}
	}
	for _, name := range procReadOnly {
		p := filepath.Join(proc, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := readOnlyBind(p); err != nil {
			return fmt.Errorf("/proc/%s read-only: %w", name, err)
		}
	}
	return nil
}

func bindReadOnly(src, p string) error {
	if err := mountfs.Mount(src, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return mountfs.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func readOnlyBind(p string) error {
	if err := mountfs.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return mountfs.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

func setupSys(root string, bindHost bool) error {
	sys := filepath.Join(root, "sys")
	if err := os.MkdirAll(sys, 0o555); err != nil {
		return err
	}
	if bindHost {
		// sysfs can be mounted only by the owner of the network
		// namespace: with the host's network, the host's /sys.
		return bindReadOnly("/sys", sys)
	}
	if err := mountfs.Mount("sysfs", sys, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	// The firmware's own cgroup (the new cgroup namespace's root), read-
	// only. Optional: a host without cgroup2 leaves the folder empty.
	cg := filepath.Join(sys, "fs/cgroup")
	if _, err := os.Stat(cg); err == nil {
		mountfs.Mount("cgroup2", cg, "cgroup2", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return nil
}

func bindInto(root string, b Bind) error {
	fi, err := os.Stat(b.Source)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, filepath.Clean("/"+b.Target))
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return err
	}
	if err := mountfs.Mount(b.Source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if b.ReadOnly {
		return mountfs.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
	}
	return nil
}

// pivotDir is where, in an initramfs, the root goes through a tmpfs on
// its way to pivot_root.
const pivotDir = "/.ofsroot-pivot"

// enterRoot makes root "/" with pivot_root(2) and detaches the old root,
// so that nothing of the host stays reachable. pivot_root(".", ".")
// stacks the old root on the new one; detaching "." then drops it (runc
// does the same; no put_old folder is needed).
//
// In an initramfs the old root is rootfs, which pivot_root refuses
// (EINVAL: it has no parent mount). Then every other mount of the
// initramfs (its /dev with the real disk's node, /proc, the real root
// at /mnt/root-RO, ...) is detached first, the root is moved into a
// small tmpfs, and that tmpfs is moved over rootfs and chrooted into:
// now the process root has a parent and pivot_root works; rootfs ends
// up fully covered by the new root.
func enterRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	err := unix.PivotRoot(".", ".")
	if errors.Is(err, unix.EINVAL) {
		if err = leaveRootfs(root); err == nil {
			err = unix.PivotRoot(".", ".")
		}
	}
	if err != nil {
		return fmt.Errorf("pivot_root . .: %w", err)
	}
	if err := mountfs.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

func leaveRootfs(root string) error {
	if err := detachAllBut(root); err != nil {
		return err
	}
	if err := os.MkdirAll(pivotDir, 0o700); err != nil {
		return err
	}
	if err := mountfs.Mount("tmpfs", pivotDir, "tmpfs", 0, "mode=0700,size=4k"); err != nil {
		return err
	}
	inner := pivotDir + "/root"
	if err := os.Mkdir(inner, 0o755); err != nil {
		return err
	}
	if err := mountfs.Move(root, inner); err != nil {
		return err
	}
	if err := unix.Chdir(pivotDir); err != nil {
		return err
	}
	if err := mountfs.Move(".", "/"); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot .: %w", err)
	}
	return unix.Chdir("/root")
}

// detachAllBut lazily unmounts every mount of this namespace that is
// neither root, under root, nor on the way to root. It is used only when
// "/" is the initramfs, whose other mounts must not stay reachable
// under the sandbox.
func detachAllBut(root string) error {
	mounts, err := mountfs.ReadMountinfo()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		p := m.Point
		if p == "/" || p == root || strings.HasPrefix(p, root+"/") || strings.HasPrefix(root, p+"/") {
			continue
		}
		err := unix.Unmount(p, unix.MNT_DETACH)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return &mountfs.Error{Op: "umount -l", Target: p, Err: err}
		}
	}
	return nil
}

// loUp brings the loopback interface of the new network namespace up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

// closeInherited marks every descriptor above 2 close-on-exec, so that
// the firmware's init starts with 0, 1 and 2 only (the Go runtime's own
// descriptors stay usable until the exec). Kernels before 5.11 have no
// CLOSE_RANGE_CLOEXEC: then each open descriptor is marked by hand.
func closeInherited() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if err != unix.ENOSYS && err != unix.EINVAL {
		return fmt.Errorf("close_range(3, ~0, CLOSE_RANGE_CLOEXEC): %w", err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close_range is missing and /proc/self/fd unreadable: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("fcntl(%d, F_SETFD, FD_CLOEXEC): %w", fd, err)
		}
	}
	return nil
}

// waitParent reads the parent's go-ahead (one byte) on descriptor 3; the
// parent closes the pipe without a byte when it could not set the
// cgroup up.
func waitParent() error {
	f := os.NewFile(3, "go-ahead")
	defer f.Close()
	var b [1]byte
	if n, err := f.Read(b[:]); n != 1 {
		return fmt.Errorf("no go-ahead from the parent: %v", err)
	}
	return nil
}
