// Command naive is the benchmark's yardstick for an initramfs /init: the
// least a Go init can do to boot an overlay-protected root, and nothing
// more. It loads every module in the order file (no choice by the root's
// filesystem, errors ignored), polls every 10 ms for the root= device (a
// /dev path only), mounts it read-only as ext4 under a tmpfs overlay,
// moves /dev and /proc into the new root, switches to it without freeing
// the initramfs, and execs /sbin/init. No status, no logging, no checks,
// no rescue: it is not an init to ship, only the figure to beat.
//
// `ofsroot bench --variants naive` builds an initramfs with it in place
// of ofsroot's init (the same modules).
package main

import (
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
)

func main() {
	os.Mkdir("/dev", 0o755)
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	os.Mkdir("/proc", 0o755)
	syscall.Mount("proc", "/proc", "proc", 0, "")
	if f, err := os.Open(modload.OrderFile); err == nil {
		entries, _ := modload.ParseOrder(f)
		f.Close()
		for _, e := range entries {
			modload.Load(e.Path, e.Params)
		}
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	root := ""
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "root="); ok {
			root = v
		}
	}
	for {
		if fd, err := syscall.Open(root, syscall.O_RDONLY, 0); err == nil {
			syscall.Close(fd)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range []string{"/ro", "/rw", "/newroot"} {
		os.Mkdir(d, 0o755)
	}
	must(syscall.Mount(root, "/ro", "ext4", syscall.MS_RDONLY, ""))
	must(syscall.Mount("tmpfs", "/rw", "tmpfs", 0, "size=20%"))
	os.Mkdir("/rw/upper", 0o755)
	os.Mkdir("/rw/work", 0o755)
	must(syscall.Mount("overlay", "/newroot", "overlay", 0, "lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work"))
	syscall.Mount("/dev", "/newroot/dev", "", syscall.MS_MOVE, "")
	syscall.Mount("/proc", "/newroot/proc", "", syscall.MS_MOVE, "")
	must(syscall.Chdir("/newroot"))
	must(syscall.Mount(".", "/", "", syscall.MS_MOVE, ""))
	must(syscall.Chroot("."))
	must(syscall.Chdir("/"))
	must(syscall.Exec("/sbin/init", []string{"/sbin/init"}, os.Environ()))
}

// must ends the boot (a kernel panic: PID 1 exited) on an error.
func must(err error) {
	if err != nil {
		os.Stdout.WriteString("naive init: " + err.Error() + "\n")
		os.Exit(1)
	}
}
