package sandbox

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// runFilter interprets the classic BPF the filter uses (word loads from
// seccomp_data, jeq, jge, jset, ret) on one system call, as the kernel
// would, so that every architecture's block is tested on any host.
func runFilter(t *testing.T, prog []unix.SockFilter, arch, nr uint32, arg0 uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], nr)
	binary.LittleEndian.PutUint32(data[4:], arch)
	binary.LittleEndian.PutUint64(data[16:], arg0)
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldW:
			a = binary.LittleEndian.Uint32(data[in.K:])
		case ret:
			return in.K
		case jeq, jge, jset:
			var cond bool
			switch in.Code {
			case jeq:
				cond = a == in.K
			case jge:
				cond = a >= in.K
			case jset:
				cond = a&in.K != 0
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			t.Fatalf("instruction %d: opcode %#x the filter should not use", pc, in.Code)
		}
	}
	t.Fatal("the program ran off its end")
	return 0
}

// TestFilterDecisions runs each build's filter on every call it must
// refuse, for each architecture it checks (i386 on amd64, 32-bit ARM on
// arm64), and on calls it must let through.
func TestFilterDecisions(t *testing.T) {
	// Calls that must pass: read/write-ish numbers per architecture
	// (getpid), and clone without CLONE_NEWUSER.
	getpid := map[string]uint32{"amd64": 39, "386": 20, "arm": 20, "arm64": 172}
	for _, build := range []string{"amd64", "386", "arm", "arm64"} {
		prog, err := BuildFilter(build)
		if err != nil {
			t.Fatal(err)
		}
		// Written out here, not FilterArches: a 64-bit kernel runs the
		// 32-bit calls of its family too.
		arches := map[string][]string{"amd64": {"amd64", "386"}, "arm64": {"arm64", "arm"}, "386": {"386"}, "arm": {"arm"}}[build]
		for _, arch := range arches {
			aa := map[string]uint32{"amd64": 0xc000003e, "386": 0x40000003, "arm": 0x40000028, "arm64": 0xc00000b7}[arch]
			for name := range Denied {
				nr, ok := SyscallNumber(arch, name)
				if !ok {
					continue
				}
				if got := runFilter(t, prog, aa, nr, 0); got != retEPERM {
					t.Errorf("%s build, %s call %s (%d): %#x, want EPERM", build, arch, name, nr, got)
				}
			}
			for _, name := range []string{"clone", "unshare"} {
				nr, _ := SyscallNumber(arch, name)
				if got := runFilter(t, prog, aa, nr, unix.CLONE_NEWUSER|unix.CLONE_NEWNS); got != retEPERM {
					t.Errorf("%s build, %s %s(CLONE_NEWUSER): %#x, want EPERM", build, arch, name, got)
				}
				if got := runFilter(t, prog, aa, nr, unix.CLONE_NEWNS|uint64(unix.SIGCHLD)); got != retAllow {
					t.Errorf("%s build, %s %s(CLONE_NEWNS): %#x, want allowed", build, arch, name, got)
				}
			}
			if got := runFilter(t, prog, aa, 435, 0); got != retENOSYS {
				t.Errorf("%s build, %s clone3: %#x, want ENOSYS", build, arch, got)
			}
			if got := runFilter(t, prog, aa, getpid[arch], 0); got != retAllow {
				t.Errorf("%s build, %s getpid: %#x, want allowed", build, arch, got)
			}
		}
		// An architecture the build does not know, and x32.
		if got := runFilter(t, prog, 0xdeadbeef, getpid[build], 0); got != retENOSYS {
			t.Errorf("%s build, unknown architecture: %#x, want ENOSYS", build, got)
		}
		if build == "amd64" {
			if got := runFilter(t, prog, auditArch["amd64"], x32Bit|39, 0); got != retENOSYS {
				t.Errorf("amd64 build, x32 getpid: %#x, want ENOSYS", got)
			}
		}
	}
}
