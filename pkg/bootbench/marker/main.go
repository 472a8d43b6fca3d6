// Command marker is the benchmark's stand-in for a real init. Its first
// act stamps a line on /dev/kmsg, so the kernel's own clock says when the
// real init started; then it copies the kernel log and ofsroot's status
// record to the console for the benchmark to read, and reboots (QEMU runs
// with -no-reboot, so that ends the run).
//
// It serves both as the real root's /sbin/init and, in the kernel-only
// floor, as the initramfs's /init, where it mounts devtmpfs itself. It uses
// nothing but raw system calls so that its own start-up stays small.
package main

import (
	"syscall"
)

// Stamp is what the marker writes to the kernel log first.
const Stamp = "ofsbench: marker"

func main() {
	kmsg, err := syscall.Open("/dev/kmsg", syscall.O_RDWR, 0)
	if err != nil {
		// The kernel-only floor: no devtmpfs yet.
		syscall.Mkdir("/dev", 0o755)
		syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
		kmsg, err = syscall.Open("/dev/kmsg", syscall.O_RDWR, 0)
	}
	if err == nil {
		syscall.Write(kmsg, []byte("<5>"+Stamp+"\n"))
		syscall.Close(kmsg)
	}
	con, err := syscall.Open("/dev/console", syscall.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		con = 1
	}
	say := func(s string) { syscall.Write(con, []byte(s)) }
	say("\nofsbench: begin\n")
	// Every record in the kernel's buffer, one per line.
	if r, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
		buf := make([]byte, 8192)
		for {
			n, err := syscall.Read(r, buf)
			if err == syscall.EPIPE {
				continue // overwritten records: go on with the next
			}
			if err != nil || n <= 0 {
				break
			}
			rec := buf[:n]
			if rec[len(rec)-1] == '\n' {
				rec = rec[:len(rec)-1]
			}
			// Continuation lines (" KEY=value") are left out.
			line := rec
			for i, c := range rec {
				if c == '\n' {
					line = rec[:i]
					break
				}
			}
			say("ofsbench-kmsg: " + string(line) + "\n")
		}
		syscall.Close(r)
	}
	if f, err := syscall.Open("/run/ofsroot/status.json", syscall.O_RDONLY, 0); err == nil {
		say("ofsbench-status: ")
		buf := make([]byte, 4096)
		for {
			n, err := syscall.Read(f, buf)
			if err != nil || n <= 0 {
				break
			}
			for i := 0; i < n; i++ {
				if buf[i] == '\n' {
					buf[i] = ' '
				}
			}
			syscall.Write(con, buf[:n])
		}
		say("\n")
	}
	say("ofsbench: end\n")
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	for {
		syscall.Pause()
	}
}
