package sandbox

import (
	"fmt"
	"runtime"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter: a deny-list in the spirit of systemd-nspawn's
// default, written as classic BPF with golang.org/x/sys/unix only (no
// cgo, no library: github.com/elastic/go-seccomp-bpf lets a syscall of
// a second architecture — i386 through int 0x80 on amd64, 32-bit ARM on
// arm64 — fall through to the default action, which for a deny-list is
// "allow", and can answer only EPERM, not ENOSYS for clone3).
//
// Every architecture the running kernel can execute for this program's
// build is checked by its AUDIT_ARCH and gets its own numbers; any other
// architecture, and the x32 ABI, gets ENOSYS.

// Denied are the system calls the firmware is refused (EPERM), with why.
// A name an architecture does not have is skipped there.
var Denied = map[string]string{
	"add_key":           "the kernel keyring (the host's keys)",
	"request_key":       "the kernel keyring",
	"keyctl":            "the kernel keyring",
	"kexec_load":        "load a new kernel",
	"kexec_file_load":   "load a new kernel",
	"bpf":               "BPF programs and maps",
	"perf_event_open":   "perf events of the host",
	"init_module":       "load a kernel module",
	"finit_module":      "load a kernel module",
	"delete_module":     "unload a kernel module",
	"clock_settime":     "set the clock",
	"clock_settime64":   "set the clock",
	"settimeofday":      "set the clock",
	"stime":             "set the clock",
	"adjtimex":          "adjust the clock",
	"clock_adjtime":     "adjust the clock",
	"clock_adjtime64":   "adjust the clock",
	"open_by_handle_at": "open host files by handle (the shocker escape)",
	"userfaultfd":       "stall the kernel on page faults (exploit helper)",
	"iopl":              "raw I/O ports",
	"ioperm":            "raw I/O ports",
	"swapon":            "swap on a host device",
	"swapoff":           "swap off",
	"reboot":            "reboot the host",
	"mount":             "mount",
	"umount":            "unmount",
	"umount2":           "unmount (uncover what the sandbox hides)",
	"pivot_root":        "change the root",
	"move_mount":        "mount",
	"open_tree":         "mount",
	"open_tree_attr":    "mount",
	"fsopen":            "mount",
	"fsconfig":          "mount",
	"fsmount":           "mount",
	"fspick":            "reconfigure a mount",
	"mount_setattr":     "change mount attributes",
	"acct":              "process accounting to a host file",
	"quotactl":          "disk quotas",
	"quotactl_fd":       "disk quotas",
	"syslog":            "read and clear the kernel log",
	"lookup_dcookie":    "kernel profiling",
	"nfsservctl":        "the kernel NFS server",
	"vhangup":           "hang up the terminal",
	"uselib":            "old a.out loader",
}

// Filtered on an argument: refused (EPERM) when the flags (argument 0)
// ask for a new user namespace, the way out of the dropped capabilities.
// clone3 passes its flags in memory, which seccomp cannot read: it gets
// ENOSYS, and the C libraries fall back to clone.
var (
	argFiltered = []string{"clone", "unshare"}
	enosys      = []string{"clone3"}
)

// syscallNumbers are the numbers of the names above on each architecture
// the sandbox supports, from the kernel's tables (checked against
// golang.org/x/sys/unix's by the tests).
var syscallNumbers = map[string]map[string]uint32{
	"amd64": {
		"add_key": 248, "request_key": 249, "keyctl": 250, "kexec_load": 246, "kexec_file_load": 320,
		"bpf": 321, "perf_event_open": 298, "init_module": 175, "finit_module": 313, "delete_module": 176,
		"clock_settime": 227, "settimeofday": 164, "adjtimex": 159, "clock_adjtime": 305,
		"open_by_handle_at": 304, "userfaultfd": 323, "iopl": 172, "ioperm": 173, "swapon": 167,
		"swapoff": 168, "reboot": 169, "mount": 165, "umount2": 166, "pivot_root": 155,
		"acct": 163, "quotactl": 179, "syslog": 103, "lookup_dcookie": 212, "nfsservctl": 180,
		"vhangup": 153, "uselib": 134, "clone": 56, "unshare": 272,
	},
	"386": {
		"add_key": 286, "request_key": 287, "keyctl": 288, "kexec_load": 283,
		"bpf": 357, "perf_event_open": 336, "init_module": 128, "finit_module": 350, "delete_module": 129,
		"clock_settime": 264, "clock_settime64": 404, "settimeofday": 79, "stime": 25, "adjtimex": 124,
		"clock_adjtime": 343, "clock_adjtime64": 405, "open_by_handle_at": 342, "userfaultfd": 374,
		"iopl": 110, "ioperm": 101, "swapon": 87, "swapoff": 115, "reboot": 88, "mount": 21,
		"umount": 22, "umount2": 52, "pivot_root": 217, "acct": 51, "quotactl": 131, "syslog": 103,
		"lookup_dcookie": 253, "nfsservctl": 169, "vhangup": 111, "uselib": 86, "clone": 120, "unshare": 310,
	},
	"arm": {
		"add_key": 309, "request_key": 310, "keyctl": 311, "kexec_load": 347, "kexec_file_load": 401,
		"bpf": 386, "perf_event_open": 364, "init_module": 128, "finit_module": 379, "delete_module": 129,
		"clock_settime": 262, "clock_settime64": 404, "settimeofday": 79, "adjtimex": 124,
		"clock_adjtime": 372, "clock_adjtime64": 405, "open_by_handle_at": 371, "userfaultfd": 388,
		"swapon": 87, "swapoff": 115, "reboot": 88, "mount": 21, "umount2": 52, "pivot_root": 218,
		"acct": 51, "quotactl": 131, "syslog": 103, "lookup_dcookie": 249, "nfsservctl": 169,
		"vhangup": 111, "uselib": 86, "clone": 120, "unshare": 337,
	},
	"arm64": {
		"add_key": 217, "request_key": 218, "keyctl": 219, "kexec_load": 104, "kexec_file_load": 294,
		"bpf": 280, "perf_event_open": 241, "init_module": 105, "finit_module": 273, "delete_module": 106,
		"clock_settime": 112, "settimeofday": 170, "adjtimex": 171, "clock_adjtime": 266,
		"open_by_handle_at": 265, "userfaultfd": 282, "swapon": 224, "swapoff": 225, "reboot": 142,
		"mount": 40, "umount2": 39, "pivot_root": 41, "acct": 89, "quotactl": 60, "syslog": 116,
		"lookup_dcookie": 18, "nfsservctl": 42, "vhangup": 58, "clone": 220, "unshare": 97,
	},
}

// commonNumbers are the calls added since Linux 5.0, numbered alike on
// every architecture here.
var commonNumbers = map[string]uint32{
	"open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
	"fspick": 433, "clone3": 435, "mount_setattr": 442, "quotactl_fd": 443, "open_tree_attr": 467,
}

// SyscallNumber returns the number of system call name on arch (a
// GOARCH: amd64, 386, arm, arm64).
func SyscallNumber(arch, name string) (uint32, bool) {
	t, ok := syscallNumbers[arch]
	if !ok {
		return 0, false
	}
	if n, ok := t[name]; ok {
		return n, true
	}
	n, ok := commonNumbers[name]
	return n, ok
}

// auditArch is each supported architecture's AUDIT_ARCH value.
var auditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"386":   unix.AUDIT_ARCH_I386,
	"arm":   unix.AUDIT_ARCH_ARM,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}

// FilterArches are the architectures a program built for goarch can run
// system calls as: its own and the 32-bit one its kernel may also run.
func FilterArches(goarch string) []string {
	switch goarch {
	case "amd64":
		return []string{"amd64", "386"}
	case "arm64":
		return []string{"arm64", "arm"}
	case "386", "arm":
		return []string{goarch}
	}
	return nil
}

// x32Bit marks an x32 system call on amd64.
const x32Bit = 0x40000000

// Offsets in struct seccomp_data (all supported architectures are little-
// endian: the low word of an argument comes first).
const (
	offNR   = 0
	offArch = 4
	offArg0 = 16
)

const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	ret  = unix.BPF_RET | unix.BPF_K
)

// archBlock is the filter for one architecture, entered with the system
// call number in A; every path ends in a return.
func archBlock(arch string) []unix.SockFilter {
	var b []unix.SockFilter
	if arch == "amd64" {
		b = append(b, jump(jge, x32Bit, 0, 1), stmt(ret, retENOSYS))
	}
	var nrs []uint32
	for name := range Denied {
		if n, ok := SyscallNumber(arch, name); ok {
			nrs = append(nrs, n)
		}
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	for _, n := range nrs {
		b = append(b, jump(jeq, n, 0, 1), stmt(ret, retEPERM))
	}
	for _, name := range enosys {
		n, _ := SyscallNumber(arch, name)
		b = append(b, jump(jeq, n, 0, 1), stmt(ret, retENOSYS))
	}
	for _, name := range argFiltered {
		n, _ := SyscallNumber(arch, name)
		// Not this call: skip the 4 that follow. Else load the low
		// word of the flags, and refuse CLONE_NEWUSER.
		b = append(b,
			jump(jeq, n, 0, 4),
			stmt(ldW, offArg0),
			jump(jset, unix.CLONE_NEWUSER, 0, 1),
			stmt(ret, retEPERM),
			stmt(ret, retAllow))
	}
	return append(b, stmt(ret, retAllow))
}

// BuildFilter returns the BPF program for a program built for goarch.
func BuildFilter(goarch string) ([]unix.SockFilter, error) {
	arches := FilterArches(goarch)
	if len(arches) == 0 {
		return nil, fmt.Errorf("seccomp: no system call table for %s (the sandbox knows amd64, 386, arm, arm64)", goarch)
	}
	prog := []unix.SockFilter{stmt(ldW, offArch)}
	for _, a := range arches {
		blk := archBlock(a)
		if len(blk)+1 > 255 {
			return nil, fmt.Errorf("seccomp: the %s block is %d instructions, more than a jump spans", a, len(blk))
		}
		prog = append(prog, jump(jeq, auditArch[a], 0, uint8(len(blk)+1)), stmt(ldW, offNR))
		prog = append(prog, blk...)
	}
	// An architecture this build cannot know the numbers of.
	return append(prog, stmt(ret, retENOSYS)), nil
}

// loadSeccomp installs the filter on every thread of this process (it
// needs no_new_privs or CAP_SYS_ADMIN); it stays across the exec.
func loadSeccomp() error {
	prog, err := BuildFilter(runtime.GOARCH)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC, %d instructions): %w", len(prog), errno)
	}
	return nil
}
