// Command escape runs inside a sandbox in the tests and tries, one by
// one, what a hostile firmware would try. For each action it prints
// "ESCAPE NAME=RESULT", RESULT being "ok" when the attempt worked or the
// errno's name when it failed. It is built static (CGO_ENABLED=0).
//
// Actions (arguments): pid, hostname, caps, mount-tmpfs, mount-disk=DEV,
// mknod=MAJ:MIN, sysrq, settime, module, kill=PID, connect=ADDR,
// write=PATH:TEXT, read=PATH, exists=PATH, remove=PATH, mkdir=PATH,
// wait (reads stdin to EOF), waitfor=PATH, waitsig (SIGUSR2), pause (for ever), mounts,
// exit=N.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
		case "exit":
			n, _ := strconv.Atoi(arg)
			os.Exit(n)
		default:
			fmt.Printf("ESCAPE unknown=%s\n", a)
		}
	}
}
