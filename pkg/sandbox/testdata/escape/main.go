// Command escape runs inside a sandbox in the tests and tries, one by
// one, what a hostile firmware would try. For each action it prints
// "ESCAPE NAME=RESULT", RESULT being "ok" when the attempt worked or the
// errno's name when it failed. It is built static (CGO_ENABLED=0).
//
// Actions (arguments): pid, hostname, caps, mount-tmpfs, mount-disk=DEV,
// mknod=MAJ:MIN, sysrq, settime, module, kill=PID, connect=ADDR,
// write=PATH:TEXT, read=PATH, exists=PATH, remove=PATH, mkdir=PATH,
// wait (reads stdin to EOF), waitfor=PATH, waitsig (SIGUSR2), pause (for ever), mounts,
// exit=N; syscall=NAME (a refused call made with harmless arguments: EPERM
// when refused, anything else when it reached the kernel), key-add,
// key-search=DESC, userns=ACTION,... (the actions run again as root of a
// nested user namespace mapping root to root, with a mount namespace),
// cgroup1=CONTROLLER:NAME (mount that v1 hierarchy, make cgroup NAME),
// clone3, setuid-copy=PATH (a set-user-ID root copy of this program),
// euid, sethostname=NAME, fill=PATH (write until an error; prints the
// MiB written), forkbomb=N (start up to N processes), memhog=MIB,
// rawsocket, mknod-null=PATH (char 1:3, then opens it), open=PATH,
// stat=PATH (owner uid:gid and mode).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// refusedCall makes system call name with arguments that do nothing
// harmful where it is allowed (invalid flags, a missing path, a NULL
// pointer): outside, it reaches the kernel and fails with EINVAL, EFAULT,
// ENOENT... or does nothing; refused, it fails with EPERM.
func refusedCall(name string) error {
	nr, ok := sandbox.SyscallNumber(runtime.GOARCH, name)
	if !ok {
		return fmt.Errorf("no %s on %s", name, runtime.GOARCH)
	}
	path, _ := unix.BytePtrFromString("/nonexistent-ofsroot-escape")
	p := uintptr(unsafe.Pointer(path))
	var a [6]uintptr
	switch name {
	case "bpf", "kexec_load", "kexec_file_load":
		a = [6]uintptr{0xffff, 0, 0, 0xffff, 0xffff, 0} // bad command, bad flags
	case "perf_event_open", "open_by_handle_at":
		a = [6]uintptr{^uintptr(0) /* AT_FDCWD-ish */, 0, 0, 0, 0, 0} // NULL attr / handle: EFAULT or EBADF
	case "init_module":
		a = [6]uintptr{0, 0, 0} // NULL image: EFAULT or ENOEXEC
	case "delete_module", "swapon", "swapoff", "acct":
		a = [6]uintptr{p} // missing path or module
	case "reboot":
		a = [6]uintptr{0, 0, 0} // bad magic: EINVAL
	case "userfaultfd":
		a = [6]uintptr{unix.O_CLOEXEC}
	case "keyctl":
		a = [6]uintptr{0xffff} // bad command
	case "add_key", "request_key":
		a = [6]uintptr{0} // NULL type: EFAULT
	case "iopl":
		a = [6]uintptr{0} // level 0: no change
	case "adjtimex", "clock_adjtime":
		a = [6]uintptr{0} // NULL: EFAULT
	case "umount2":
		a = [6]uintptr{p}
	}
	r, _, e := unix.Syscall6(uintptr(nr), a[0], a[1], a[2], a[3], a[4], a[5])
	runtime.KeepAlive(path)
	if e == 0 && name == "userfaultfd" {
		unix.Close(int(r))
	}
	return errnoErr(e)
}

func say(name string, err error) {
	fmt.Printf("ESCAPE %s=%s\n", name, result(err))
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func main() {
	for _, a := range os.Args[1:] {
		name, arg, _ := strings.Cut(a, "=")
		switch name {
		case "pid":
			fmt.Printf("ESCAPE pid=%d\n", os.Getpid())
		case "hostname":
			h, err := os.Hostname()
			if err != nil {
				say(name, err)
				continue
			}
			fmt.Printf("ESCAPE hostname=%s\n", h)
		case "caps":
			f, err := os.Open("/proc/self/status")
			if err != nil {
				say(name, err)
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, ok := strings.Cut(sc.Text(), ":")
				if ok && (strings.HasPrefix(k, "Cap") || k == "NoNewPrivs") {
					fmt.Printf("ESCAPE %s=%s\n", k, strings.TrimSpace(v))
				}
			}
			f.Close()
		case "mount-tmpfs":
			os.MkdirAll("/mnt", 0o755)
			say(name, unix.Mount("tmpfs", "/mnt", "tmpfs", 0, ""))
		case "mount-disk":
			os.MkdirAll("/mnt", 0o755)
			say(name, unix.Mount(arg, "/mnt", "ext4", unix.MS_RDONLY, ""))
		case "mknod":
			ma, mi, _ := strings.Cut(arg, ":")
			maj, _ := strconv.Atoi(ma)
			min, _ := strconv.Atoi(mi)
			say(name, unix.Mknod("/disk-node", unix.S_IFBLK|0o600, int(unix.Mkdev(uint32(maj), uint32(min)))))
		case "sysrq":
			f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
			if err == nil {
				// 'h' only prints the help to the kernel log.
				_, err = f.Write([]byte("h"))
				f.Close()
			}
			say(name, err)
		case "settime":
			var ts unix.Timespec
			unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
			say(name, unix.ClockSettime(unix.CLOCK_REALTIME, &ts))
		case "module":
			f, err := os.Open("/proc/self/exe")
			if err == nil {
				err = unix.FinitModule(int(f.Fd()), "", 0)
				f.Close()
			}
			say(name, err)
		case "kill":
			pid, _ := strconv.Atoi(arg)
			say(name, unix.Kill(pid, unix.SIGKILL))
		case "connect":
			c, err := net.DialTimeout("tcp", arg, 5*time.Second)
			if err == nil {
				c.Close()
			}
			say(name, err)
		case "write":
			p, text, _ := strings.Cut(arg, ":")
			say(name+":"+p, os.WriteFile(p, []byte(text), 0o644))
		case "read":
			b, err := os.ReadFile(arg)
			if err != nil {
				say(name+":"+arg, err)
				continue
			}
			fmt.Printf("ESCAPE read:%s=%q\n", arg, b)
		case "exists":
			_, err := os.Lstat(arg)
			say(name+":"+arg, err)
		case "wait":
			io.Copy(io.Discard, os.Stdin)
		case "mounts":
			b, _ := os.ReadFile("/proc/self/mountinfo")
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fmt.Printf("ESCAPE mount=%s\n", l)
			}
		case "remove":
			say(name+":"+arg, os.RemoveAll(arg))
		case "mkdir":
			say(name+":"+arg, os.MkdirAll(arg, 0o755))
		case "pause":
			fmt.Println("ESCAPE pause=ok")
			for {
				time.Sleep(time.Hour)
			}
		case "waitfor":
			// Polls for a path the test makes from outside.
			for {
				if _, err := os.Lstat(arg); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			say(name+":"+arg, nil)
		case "waitsig":
			// Waits for SIGUSR2 from outside. PID 1 of a namespace
			// gets only the signals it handles.
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGUSR2)
			fmt.Println("ESCAPE waitsig=ready")
			<-ch
		case "syscall":
			say(name+":"+arg, refusedCall(arg))
		case "key-add":
			_, err := unix.AddKey("user", "ofsroot-escape-added", []byte("x"), unix.KEY_SPEC_USER_KEYRING)
			say(name, err)
		case "key-search":
			id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", arg, 0)
			if err != nil {
				say(name, err)
				continue
			}
			buf := make([]byte, 256)
			n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
			if err != nil {
				say(name, err)
				continue
			}
			fmt.Printf("ESCAPE key-search=%q\n", buf[:min(n, len(buf))])
		case "userns":
			cmd := exec.Command("/proc/self/exe", strings.Split(arg, ",")...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWCGROUP,
				UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
				GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			}
			say(name, cmd.Run())
		case "cgroup1":
			ctl, cg, _ := strings.Cut(arg, ":")
			os.MkdirAll("/mnt", 0o755)
			err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
			if err == nil {
				if ctl == "" {
					err = unix.Mount("cgroup2", "/mnt", "cgroup2", 0, "")
				} else {
					err = unix.Mount("cgroup", "/mnt", "cgroup", 0, ctl)
				}
			}
			if err == nil {
				err = os.Mkdir("/mnt/"+cg, 0o755)
			}
			say(name, err)
		case "clone3":
			// size 0: EINVAL from the kernel, ENOSYS from the filter.
			_, _, e := unix.Syscall(435, 0, 0, 0)
			say(name, errnoErr(e))
		case "setuid-copy":
			b, err := os.ReadFile("/proc/self/exe")
			if err == nil {
				err = os.WriteFile(arg, b, 0o755)
			}
			if err == nil {
				err = unix.Chmod(arg, 0o4755)
			}
			say(name, err)
		case "euid":
			fmt.Printf("ESCAPE euid=%d\n", os.Geteuid())
		case "sethostname":
			say(name, unix.Sethostname([]byte(arg)))
		case "fill":
			f, err := os.Create(arg)
			if err != nil {
				say(name, err)
				continue
			}
			chunk := make([]byte, 1<<20)
			mib := 0
			for {
				if _, err = f.Write(chunk); err != nil {
					break
				}
				if err = f.Sync(); err != nil {
					break
				}
				mib++
			}
			f.Close()
			fmt.Printf("ESCAPE fill-mib=%d\n", mib)
			say(name, err)
		case "forkbomb":
			max, _ := strconv.Atoi(arg)
			var kids []*exec.Cmd
			var err error
			for len(kids) < max {
				c := exec.Command("/proc/self/exe", "pause")
				if err = c.Start(); err != nil {
					break
				}
				kids = append(kids, c)
			}
			fmt.Printf("ESCAPE forkbomb-started=%d\n", len(kids))
			say(name, err)
			for _, c := range kids {
				c.Process.Kill()
				c.Wait()
			}
		case "memhog":
			mib, _ := strconv.Atoi(arg)
			var keep [][]byte
			for i := 0; i < mib; i++ {
				b := make([]byte, 1<<20)
				for j := 0; j < len(b); j += 4096 {
					b[j] = 1
				}
				keep = append(keep, b)
				if i%16 == 0 {
					fmt.Printf("ESCAPE memhog-mib=%d\n", i)
				}
			}
			fmt.Printf("ESCAPE memhog=ok %d\n", len(keep))
		case "rawsocket":
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err == nil {
				unix.Close(fd)
			}
			say(name, err)
		case "mknod-null":
			err := unix.Mknod(arg, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
			if err == nil {
				var f *os.File
				if f, err = os.OpenFile(arg, os.O_WRONLY, 0); err == nil {
					f.Close()
				}
			}
			say(name, err)
		case "open":
			f, err := os.OpenFile(arg, os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			say(name+":"+arg, err)
		case "stat":
			var st unix.Stat_t
			if err := unix.Stat(arg, &st); err != nil {
				say(name+":"+arg, err)
				continue
			}
			fmt.Printf("ESCAPE stat:%s=%d:%d %o\n", arg, st.Uid, st.Gid, st.Mode&0o7777)
		case "exit":
			n, _ := strconv.Atoi(arg)
			os.Exit(n)
		default:
			fmt.Printf("ESCAPE unknown=%s\n", a)
		}
	}
}
