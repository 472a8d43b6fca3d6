package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capNames are the capabilities by number, as capabilities(7) names them.
var capNames = map[int]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// Dropped are the capabilities no sandboxed firmware keeps, with why.
// What is not listed is kept (as systemd-nspawn keeps a similar set):
// CHOWN, DAC_*, FOWNER, FSETID, KILL (within its PID namespace), SETGID,
// SETUID, SETPCAP, NET_BIND_SERVICE, NET_BROADCAST, IPC_*, SYS_CHROOT,
// SYS_PTRACE (within its PID namespace), SYS_NICE, SYS_RESOURCE,
// SYS_TTY_CONFIG, LEASE, AUDIT_WRITE, SETFCAP; NET_ADMIN and NET_RAW only
// with a private network.
var Dropped = map[int]string{
	unix.CAP_SYS_TIME:           "set the host's clock",
	unix.CAP_SYS_MODULE:         "load kernel modules",
	unix.CAP_SYS_RAWIO:          "raw I/O ports and memory",
	unix.CAP_SYS_BOOT:           "reboot the host, kexec",
	unix.CAP_MAC_ADMIN:          "change the MAC (AppArmor) policy",
	unix.CAP_MAC_OVERRIDE:       "override the MAC policy",
	unix.CAP_SYS_ADMIN:          "mount (real block devices, devtmpfs, remount /proc/sys), swapon, sethostname outside, ...",
	unix.CAP_MKNOD:              "make a node for the real disk",
	unix.CAP_LINUX_IMMUTABLE:    "set immutable flags",
	unix.CAP_SYS_PACCT:          "process accounting on host files",
	unix.CAP_SYSLOG:             "read and clear the kernel log",
	unix.CAP_WAKE_ALARM:         "wake the host",
	unix.CAP_BLOCK_SUSPEND:      "block the host's suspend",
	unix.CAP_AUDIT_CONTROL:      "change the audit rules",
	unix.CAP_AUDIT_READ:         "read the audit log",
	unix.CAP_BPF:                "load BPF programs",
	unix.CAP_PERFMON:            "perf monitoring of the host",
	unix.CAP_CHECKPOINT_RESTORE: "checkpoint/restore",
}

// hostNetDropped are dropped too when the network is the host's.
var hostNetDropped = map[int]string{
	unix.CAP_NET_ADMIN: "configure the host's network",
	unix.CAP_NET_RAW:   "raw sockets on the host's network",
}

// CapName names capability c ("CAP_SYS_TIME"), or "cap_N".
func CapName(c int) string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "cap_" + strconv.Itoa(c)
}

// lastCap is the highest capability the running kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// KeptMask returns the capabilities a sandbox with network n keeps, as a
// 64-bit mask, on a kernel whose highest capability is last.
func KeptMask(n Net, last int) uint64 {
	var m uint64
	for c := 0; c <= last && c < 64; c++ {
		if _, drop := Dropped[c]; drop {
			continue
		}
		if _, drop := hostNetDropped[c]; drop && n == NetHost {
			continue
		}
		m |= 1 << uint(c)
	}
	return m
}

// dropCapabilities leaves this thread (and what it execs as root) with
// the kept set only: bounding set first (needs CAP_SETPCAP, still held),
// then the ambient set, then effective, permitted and inheritable.
//
// In a user namespace CAP_SYS_ADMIN is kept: it counts there only (the
// hostname of the firmware's own UTS namespace; the kernel refuses real
// devices and host-wide settings to a non-initial user namespace, and
// the seccomp filter still refuses mount).
func dropCapabilities(n Net, userns bool) error {
	last := lastCap()
	keep := KeptMask(n, last)
	if userns {
		keep |= 1 << unix.CAP_SYS_ADMIN
	}
	for c := 0; c <= last; c++ {
		if c < 64 && keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %s): %w", CapName(c), err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	// Only what is permitted now can be kept (a host may run without
	// some capability already).
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	keep &= uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	for i := range data {
		w := uint32(keep >> (32 * uint(i)))
		data[i] = unix.CapUserData{Effective: w, Permitted: w, Inheritable: w}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset(kept %#x): %w", keep, err)
	}
	return nil
}

// ParseCapMask reads a /proc/PID/status capability line's value
// ("000001fffeffffff").
func ParseCapMask(hex string) (uint64, error) {
	return strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
}
