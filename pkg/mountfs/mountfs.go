// Package mountfs wraps the mount family of system calls the init uses
// (mount, umount, MS_MOVE, chroot-free switch) with one error type that
// keeps the errno, so callers can test errors.Is(err, unix.EBUSY), and
// prints mount flags by name, as `mount -o` would.
package mountfs

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Error is a failed mount-family call.
type Error struct {
	Op     string // "mount", "umount", "move"
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Err    error // the errno
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.FSType != "" {
		fmt.Fprintf(&b, " -t %s", e.FSType)
	}
	opts := FlagNames(e.Flags)
	if e.Data != "" {
		opts = append(opts, e.Data)
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, " -o %s", strings.Join(opts, ","))
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " %s", e.Source)
	}
	fmt.Fprintf(&b, " %s: %v", e.Target, e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// flagNames are the mount flags by the names mount(8) uses.
var flagNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "ro"},
	{unix.MS_NOSUID, "nosuid"},
	{unix.MS_NODEV, "nodev"},
	{unix.MS_NOEXEC, "noexec"},
	{unix.MS_SYNCHRONOUS, "sync"},
	{unix.MS_REMOUNT, "remount"},
	{unix.MS_MANDLOCK, "mand"},
	{unix.MS_DIRSYNC, "dirsync"},
	{unix.MS_NOSYMFOLLOW, "nosymfollow"},
	{unix.MS_NOATIME, "noatime"},
	{unix.MS_NODIRATIME, "nodiratime"},
	{unix.MS_BIND, "bind"},
	{unix.MS_MOVE, "move"},
	{unix.MS_REC, "rec"},
	{unix.MS_SILENT, "silent"},
	{unix.MS_UNBINDABLE, "unbindable"},
	{unix.MS_PRIVATE, "private"},
	{unix.MS_SLAVE, "slave"},
	{unix.MS_SHARED, "shared"},
	{unix.MS_RELATIME, "relatime"},
	{unix.MS_STRICTATIME, "strictatime"},
	{unix.MS_LAZYTIME, "lazytime"},
}

// FlagNames names the flags set in f; unknown bits are shown in hex.
func FlagNames(f uintptr) []string {
	var names []string
	for _, fn := range flagNames {
		if f&fn.flag != 0 {
			names = append(names, fn.name)
			f &^= fn.flag
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", f))
	}
	return names
}

// ParseOptions splits a mount option string into flags the kernel takes
// as bits and the rest, which goes to the filesystem as data. Unknown
// words are data.
func ParseOptions(opts string) (flags uintptr, data string) {
	var rest []string
	byName := map[string]uintptr{}
	for _, fn := range flagNames {
		byName[fn.name] = fn.flag
	}
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "", "defaults":
			continue
		case "rw":
			flags &^= unix.MS_RDONLY
			continue
		case "atime":
			flags &^= unix.MS_NOATIME
			continue
		case "suid", "dev", "exec", "async":
			continue
		}
		if f, ok := byName[o]; ok && f&(unix.MS_BIND|unix.MS_MOVE|unix.MS_REC|unix.MS_REMOUNT|unix.MS_SHARED|unix.MS_SLAVE|unix.MS_PRIVATE|unix.MS_UNBINDABLE) == 0 {
			flags |= f
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

// Mount calls mount(2).
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &Error{Op: "mount", Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
	}
	return nil
}

// Move moves the mount at source to target (mount --move).
func Move(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_MOVE, ""); err != nil {
		return &Error{Op: "mount --move", Source: source, Target: target, Err: err}
	}
	return nil
}

// Unmount calls umount2(2).
func Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return &Error{Op: "umount", Target: target, Err: err}
	}
	return nil
}

// Filesystems reads /proc/filesystems: the types the kernel can mount now,
// and which of them need no device.
func Filesystems(procFilesystems string) (all []string, nodev map[string]bool) {
	nodev = map[string]bool{}
	for _, line := range strings.Split(procFilesystems, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "nodev":
			all = append(all, f[1])
			nodev[f[1]] = true
		case len(f) == 1:
			all = append(all, f[0])
		}
	}
	sort.Strings(all)
	return all, nodev
}

// KernelHas says whether the running kernel can mount fstype now.
func KernelHas(fstype string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	all, _ := Filesystems(string(data))
	for _, t := range all {
		if t == fstype {
			return true
		}
	}
	return false
}
