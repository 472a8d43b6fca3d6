package modload

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []Entry
		bad  string
	}{
		{"plain", "/lib/modules/6.1/kernel/fs/ext4/ext4.ko\n/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko\n",
			[]Entry{{Path: "/lib/modules/6.1/kernel/fs/ext4/ext4.ko", Params: ""}, {Path: "/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko", Params: ""}}, ""},
		{"params", "/m/a.ko debug=1 name=\"x y\"\n", []Entry{{Path: "/m/a.ko", Params: `debug=1 name="x y"`}}, ""},
		{"tab before params", "/m/a.ko\tdebug=1\n", []Entry{{Path: "/m/a.ko", Params: "debug=1"}}, ""},
		{"comments and blanks", "# header\n\n   # indented comment\n  /m/a.ko  \n\t\n", []Entry{{Path: "/m/a.ko", Params: ""}}, ""},
		{"no final newline", "/m/a.ko", []Entry{{Path: "/m/a.ko", Params: ""}}, ""},
		{"crlf", "/m/a.ko x=1\r\n", []Entry{{Path: "/m/a.ko", Params: "x=1"}}, ""},
		{"empty", "", nil, ""},
		{"relative path", "# c\n/m/a.ko\nkernel/b.ko\n", nil, "line 3"},
		{"name only", "ext4\n", nil, `"ext4" is not an absolute path`},
		{"root filesystem", "rootfs=ext4,ext3,ext2 /m/ext4.ko x=1\nrootfs=squashfs\t/m/squashfs.ko\n",
			[]Entry{{Path: "/m/ext4.ko", Params: "x=1", RootFS: []string{"ext4", "ext3", "ext2"}}, {Path: "/m/squashfs.ko", RootFS: []string{"squashfs"}}}, ""},
		{"root filesystem, no path", "rootfs=ext4\n", nil, `"" is not an absolute path`},
		{"root filesystem, empty type", "rootfs=ext4,,x /m/a.ko\n", nil, "empty filesystem type"},
	} {
		got, err := ParseOrder(strings.NewReader(tc.in))
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.bad)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestFormatOrderRoundTrip(t *testing.T) {
	entries := []Entry{
		{Path: "/lib/modules/6.1.0-50-amd64/kernel/crypto/crc32c_generic.ko", Params: ""},
		{Path: "/lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko", Params: " debug=1 ", RootFS: []string{"ext4", "ext3"}},
	}
	var b bytes.Buffer
	if err := FormatOrder(&b, entries); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "# ") || !strings.HasSuffix(b.String(), "\nrootfs=ext4,ext3 /lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko debug=1\n") {
		t.Errorf("formatted:\n%s", b.String())
	}
	got, err := ParseOrder(&b)
	entries[1].Params = "debug=1"
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Errorf("round trip: %q, %v", got, err)
	}
	if got[1].Name() != "ext4" || got[0].Name() != "crc32c_generic" {
		t.Errorf("names %q %q", got[0].Name(), got[1].Name())
	}
	for _, bad := range []Entry{{Path: "/a.ko", RootFS: []string{"ext4,ext3"}}, {Path: "/a.ko", RootFS: []string{""}}, {Path: "kernel/x.ko", Params: ""}, {Path: "/a b.ko", Params: ""}, {Path: "/a.ko", Params: "x=1\ny=2"}} {
		if err := FormatOrder(&bytes.Buffer{}, []Entry{bad}); err == nil {
			t.Errorf("FormatOrder(%q) accepted", bad)
		}
	}
}

func TestWantedFor(t *testing.T) {
	always := Entry{Path: "/m/virtio_blk.ko"}
	ext := Entry{Path: "/m/ext4.ko", RootFS: []string{"ext4", "ext3", "ext2"}}
	for _, tc := range []struct {
		e      Entry
		fstype string
		want   bool
	}{
		{always, "ext4", true}, {always, "", true},
		{ext, "ext3", true}, {ext, "squashfs", false}, {ext, "", true},
	} {
		if got := tc.e.WantedFor(tc.fstype); got != tc.want {
			t.Errorf("%v.WantedFor(%q) = %v", tc.e, tc.fstype, got)
		}
	}
}
