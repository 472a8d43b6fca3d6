package mountfs

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

// TestFlagNames covers every entry of the flag table.
func TestFlagNames(t *testing.T) {
	seen := map[string]bool{}
	for _, fn := range flagNames {
		got := FlagNames(fn.flag)
		if len(got) != 1 || got[0] != fn.name {
			t.Errorf("FlagNames(%#x) = %v, want [%s]", fn.flag, got, fn.name)
		}
		if seen[fn.name] {
			t.Errorf("name %s twice", fn.name)
		}
		seen[fn.name] = true
	}
	if got := FlagNames(unix.MS_RDONLY | unix.MS_NOATIME | 1<<30); !reflect.DeepEqual(got, []string{"ro", "noatime", "0x40000000"}) {
		t.Errorf("combined: %v", got)
	}
	if got := FlagNames(0); got != nil {
		t.Errorf("none: %v", got)
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in    string
		flags uintptr
		data  string
	}{
		{"", 0, ""},
		{"defaults", 0, ""},
		{"ro", unix.MS_RDONLY, ""},
		{"ro,rw", 0, ""},
		{"noatime,data=ordered,ro", unix.MS_NOATIME | unix.MS_RDONLY, "data=ordered"},
		{"nosuid,nodev,noexec,relatime", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME, ""},
		{"errors=remount-ro,commit=30", 0, "errors=remount-ro,commit=30"},
		{"bind,remount", 0, "bind,remount"}, // never from a user's option string
		{"suid,dev,exec,async,atime", 0, ""},
	} {
		f, d := ParseOptions(tc.in)
		if f != tc.flags || d != tc.data {
			t.Errorf("ParseOptions(%q) = %v, %q; want %v, %q", tc.in, FlagNames(f), d, FlagNames(tc.flags), tc.data)
		}
	}
}

func TestErrorKeepsErrno(t *testing.T) {
	err := error(&Error{Op: "mount", Source: "/dev/vda", Target: "/mnt/root-RO", FSType: "ext4", Flags: unix.MS_RDONLY, Data: "noload", Err: unix.ENOENT})
	if !errors.Is(err, unix.ENOENT) {
		t.Error("errno lost")
	}
	want := "mount -t ext4 -o ro,noload /dev/vda /mnt/root-RO: no such file or directory"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
}

func TestFilesystems(t *testing.T) {
	all, nodev := Filesystems("nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tsquashfs\nnodev\toverlay\n")
	if !reflect.DeepEqual(all, []string{"ext4", "overlay", "squashfs", "sysfs", "tmpfs"}) || !nodev["overlay"] || nodev["ext4"] {
		t.Errorf("got %v %v", all, nodev)
	}
}

// TestMountForReal mounts a tmpfs and moves it, in a private mount
// namespace, as root.
func TestMountForReal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	a, b := t.TempDir(), t.TempDir()
	if err := Mount("tmpfs-test", a, "tmpfs", unix.MS_NOSUID, "size=1m"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(a+"/x", []byte("x"), 0o644)
	if err := Move(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b + "/x"); err != nil {
		t.Errorf("moved mount lacks file: %v", err)
	}
	if err := Unmount(b, 0); err != nil {
		t.Fatal(err)
	}
	err := Mount("none", a, "no-such-fs-type", 0, "")
	if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "mount -t no-such-fs-type none "+a) {
		t.Errorf("bad type: %v", err)
	}
	if err := Unmount(a, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("unmount of a non-mount: %v", err)
	}
}
