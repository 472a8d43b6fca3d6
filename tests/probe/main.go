// Command probe is the stand-in for the real init in the boot tests. The
// ofsroot init hands over to it as /sbin/init; it reports, as lines
// between "PROBE BEGIN" and "PROBE END" on the console, what the booted
// system looks like (mounts, sizes, what can be written where, the
// rewritten /etc/fstab, the boot status record), then syncs and reboots so
// that QEMU, run with -no-reboot, exits.
//
// In a systemd root (pkg/bootlab's SystemdImage) it runs instead as the
// service ofsroot-probe.service once multi-user.target is reached, with
// OFSROOT_PROBE_SERVICE=1: it then reports the same, plus systemd's state
// and its failed units, and powers the machine off through systemd.
//
// Every line is "PROBE KEY=VALUE"; pkg/bootlab.ParseProbe reads them.
// The probe never panics: an error becomes a "PROBE error=..." line, or
// the value of the key it was for.
//
// It is static and cgo-free, and imports only the standard library,
// golang.org/x/sys/unix and pkg/bootstatus.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// startT is CLOCK_MONOTONIC as early as a Go program can read it: package
// initialisation, before main. The benchmark subtracts the init's own
// start time from it.
var startT = monotonic()

// service: the probe runs as a systemd service, not as PID 1, and may
// write and power off all the same.
var service = os.Getenv("OFSROOT_PROBE_SERVICE") == "1"

const (
	roMount   = "/mnt/root-RO"
	rwMount   = "/mnt/root-RW"
	writeName = "probe-wrote-this"
)

func monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return -1
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// out is the console. Each report line is one write so that it is not
// split by other writers.
var out = os.Stdout

func report(key, format string, args ...any) {
	line := "PROBE " + key + "=" + fmt.Sprintf(format, args...)
	line = strings.ReplaceAll(line, "\n", `\n`)
	out.WriteString(line + "\n")
}

func main() {
	defer func() {
		// Never let PID 1 die of a panic: the kernel would panic too.
		if r := recover(); r != nil {
			report("error", "probe panicked: %v", r)
			finish()
		}
	}()
	pid1 := os.Getpid() == 1
	var quietErr error
	if pid1 || service {
		if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
			out = c
		}
		// Kernel messages that land in the middle of a report line
		// would garble it: only emergencies may reach the console
		// from now on. (Only as PID 1 or the guest's service: never
		// touch a host's setting.)
		quietErr = os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
	}

	out.WriteString("PROBE BEGIN\n")
	report("t", "%.6f", startT)
	report("pid", "%d", os.Getpid())
	sandboxChecks() // sandbox.go
	if quietErr != nil {
		report("note", "could not quiet printk: %v", quietErr)
	}
	if pid1 {
		ensureMounted("/proc", "proc")
		ensureMounted("/sys", "sysfs")
	}
	reportJSON("args", os.Args)
	reportJSON("env", os.Environ())
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		report("cmdline", "%s", strings.TrimSpace(string(b)))
	} else {
		report("cmdline", "error: %v", err)
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		report("uname", "%s", unix.ByteSliceToString(uts.Release[:]))
	}
	reportMounts()
	reportStatfs(rwMount, "rw")
	reportMemTotal()
	reportWrites()
	reportFile("fstab", "/etc/fstab")
	reportFile("hostname", "/etc/hostname")
	reportStatus()
	reportBlock()
	if service {
		reportSystemd() // systemd.go
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		if fillFirst(string(b)) { // fill.go
			fillRequested(string(b))
			runRequested(string(b))
			pathChecks(string(b)) // paths.go
		} else {
			runRequested(string(b))
			pathChecks(string(b))
			fillRequested(string(b))
		}
	}
	out.WriteString("PROBE END\n")
	finish()
}

func reportJSON(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		report(key, "error: %v", err)
		return
	}
	report(key, "%s", b)
}

// ensureMounted mounts a kernel filesystem the init should have moved
// into the new root but did not, and says so.
func ensureMounted(dir, fstype string) {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return
	}
	if st.Dev != parent.Dev {
		return
	}
	err := unix.Mount(fstype, dir, fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	report("missing-mount", "%s not mounted at hand-over; probe mounted it: %v", dir, errText(err))
}

func reportMounts() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		report("error", "mountinfo: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		report("mount", "%s", sc.Text())
	}
}

func reportStatfs(dir, key string) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		report(key+".statfs", "error: %s", errText(err))
		return
	}
	report(key+".fstype", "0x%x", st.Type)
	report(key+".bsize", "%d", st.Bsize)
	report(key+".blocks", "%d", st.Blocks)
	report(key+".bfree", "%d", st.Bfree)
}

func reportMemTotal() {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		report("memtotal", "error: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				report("memtotal", "error: %v", err)
				return
			}
			report("memtotal", "%d", kb*1024)
			return
		}
	}
	report("memtotal", "error: no MemTotal in /proc/meminfo")
}

// reportWrites tries to write the root and the read-only lower layer,
// and looks for the written file in both layers.
func reportWrites() {
	if os.Getpid() != 1 && !service {
		report("write.root", "skipped: not PID 1")
		return
	}
	content := []byte("written by the ofsroot probe\n")
	p := "/" + writeName
	// Present before the write: an earlier boot's, kept (a persistent
	// layer).
	report("write.before", "%s", exists(p))
	if err := os.WriteFile(p, content, 0o644); err != nil {
		report("write.root", "%s", errText(err))
	} else {
		got, err := os.ReadFile(p)
		switch {
		case err != nil:
			report("write.root", "read back: %s", errText(err))
		case string(got) != string(content):
			report("write.root", "read back: different content")
		default:
			report("write.root", "ok")
		}
	}
	report("write.upper", "%s", exists(filepath.Join(rwMount, "upper", writeName)))
	report("write.lower", "%s", exists(filepath.Join(roMount, writeName)))
	if err := os.WriteFile(filepath.Join(roMount, "probe-ro-test"), content, 0o644); err != nil {
		report("write.ro", "%s", errText(err))
	} else {
		report("write.ro", "ok")
	}
	unix.Sync()
}

func exists(p string) string {
	_, err := os.Lstat(p)
	switch {
	case err == nil:
		return "present"
	case errors.Is(err, os.ErrNotExist):
		return "absent"
	default:
		return errText(err)
	}
}

func reportFile(key, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		report(key, "error: %s", errText(err))
		return
	}
	report(key, "base64:%s", base64.StdEncoding.EncodeToString(b))
}

func reportStatus() {
	b, err := os.ReadFile(bootstatus.Path)
	if err != nil {
		report("status", "error: %s", errText(err))
		return
	}
	if _, err := bootstatus.Read(strings.NewReader(string(b))); err != nil {
		report("status.decode", "%v", err)
	}
	report("status", "base64:%s", base64.StdEncoding.EncodeToString(b))
}

// reportBlock lists the block devices and where they sit in sysfs, so a
// test can work out a /dev/disk/by-path name.
func reportBlock() {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		report("block", "error: %v", err)
		return
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		target, err := os.Readlink(filepath.Join("/sys/class/block", n))
		if err != nil {
			report("block", "%s error: %v", n, err)
			continue
		}
		report("block", "%s %s", n, filepath.Clean(filepath.Join("/sys/class/block", target)))
	}
}

// errText names the errno when there is one (EROFS), else the message.
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return err.Error()
}

// finish syncs and, as PID 1, restarts the machine: QEMU runs with
// -no-reboot and exits; power-off would only halt an emulated i.MX6.
func finish() {
	unix.Sync()
	if service {
		powerOffBySystemd() // systemd.go
	}
	if os.Getpid() != 1 {
		os.Exit(0)
	}
	if sandboxed() {
		os.Exit(0) // PID 1 of a sandbox: its supervisor decides what next
	}
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	report("error", "reboot: %s", errText(err))
	for {
		time.Sleep(time.Hour)
	}
}
