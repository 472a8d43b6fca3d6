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

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader("36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\n37 36 0:20 / /o ro - overlay x rw,lowerdir=/a\\,b:/c,upperdir=/u\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Point != "/mnt/a b" || ms[0].Root != "/mnt1" || ms[0].FSType != "ext3" || ms[0].Source != "/dev/root" || ms[0].ReadOnly() || ms[0].ID != 36 || ms[0].Parent != 35 || ms[0].MajorMinor != "98:0" {
		t.Errorf("%+v", ms)
	}
	if v, _ := ms[1].Option("lowerdir"); v != "/a,b:/c" || !ms[1].ReadOnly() || ms[1].SuperReadOnly() {
		t.Errorf("lowerdir %q, %+v", v, ms[1])
	}
	if m, ok := MountAt(ms, "/o"); !ok || m.ID != 37 {
		t.Errorf("MountAt /o = %+v %v", m, ok)
	}
	if _, ok := MountAt(ms, "/nope"); ok {
		t.Error("MountAt found /nope")
	}
	for _, bad := range []string{"1 2 3", "x 1 0:1 / / rw - ext4 a rw", "1 1 0:1 / / rw - ext4"} {
		if _, err := ParseMountinfo(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	live, err := ReadMountinfo()
	if err != nil || len(live) == 0 {
		t.Fatalf("this machine's mount table: %d mounts, %v", len(live), err)
	}
	if _, ok := MountAt(live, "/"); !ok {
		t.Error("no / in this machine's mount table")
	}
}
