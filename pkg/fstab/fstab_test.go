package fstab

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		entry     *Entry
		malformed bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"# comment", nil, false},
		{"   # indented comment", nil, false},
		{"/dev/sda1 / ext4 defaults 0 1", &Entry{"/dev/sda1", "/", "ext4", "defaults", "0", "1"}, false},
		{"UUID=abc /data ext4 noatime", &Entry{"UUID=abc", "/data", "ext4", "noatime", "", ""}, false},
		{"proc /proc proc", &Entry{"proc", "/proc", "proc", "defaults", "", ""}, false},
		{"/dev/sdb /mnt", &Entry{"/dev/sdb", "/mnt", "auto", "defaults", "", ""}, false},
		{"LABEL=x /my\\040data vfat ro 0 2", &Entry{"LABEL=x", "/my data", "vfat", "ro", "0", "2"}, false},
		{"\t/dev/sda2\tnone\tswap\tsw\t0\t0", &Entry{"/dev/sda2", "none", "swap", "sw", "0", "0"}, false},
		{"garbage", nil, true},
		{"a b c d e f g", nil, true},
	} {
		l := parseLine(tc.raw)
		if (l.Malformed != "") != tc.malformed {
			t.Errorf("%q: malformed=%q", tc.raw, l.Malformed)
		}
		switch {
		case tc.entry == nil && l.Entry != nil:
			t.Errorf("%q: got entry %+v", tc.raw, *l.Entry)
		case tc.entry != nil && (l.Entry == nil || *l.Entry != *tc.entry):
			t.Errorf("%q: got %+v, want %+v", tc.raw, l.Entry, *tc.entry)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"/a b": `/a\040b`, "tab\t": `tab\011`, `back\`: `back\134`, "plain": "plain"} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if got := Unescape(want); got != in {
			t.Errorf("Unescape(%q) = %q, want %q", want, got, in)
		}
	}
	for _, s := range []string{`\`, `\0`, `\04`, `\999`, `\400`, `a\x`} {
		if got := Unescape(s); got != s {
			t.Errorf("Unescape(%q) = %q, want it unchanged", s, got)
		}
	}
}

const seedFstab = `# /etc/fstab: static file system information.
#
# Use 'blkid' to print the universally unique identifier for a
# device.
/dev/disk/by-path/platform-2198000.usdhc-part1 / ext4 errors=remount-ro,noatime 0 1
/dev/mmcblk0p3 none swap sw 0 0
UUID=1234-ABCD /data vfat defaults 0 2
tmpfs /tmp tmpfs size=10M 0 0

not-a-valid-line
`

func TestRewriteSeed(t *testing.T) {
	out, warns := Rewrite([]byte(seedFstab), RealRoot{Spec: "/dev/mmcblk3p1", VfsType: "ext4", Mount: "/mnt/root-RO", Options: "ro"})
	got := string(out)
	mustContain := []string{
		"# This fstab is in RAM, the real one can be found at /mnt/root-RO/etc/fstab\n",
		"#   sudo mount -o remount,rw /mnt/root-RO\n",
		"#   sudo mount -o remount,ro /mnt/root-RO\n",
		// The user's own name for the root device wins over the kernel's.
		"\n/dev/disk/by-path/platform-2198000.usdhc-part1 /mnt/root-RO ext4 ro 0 0\n",
		"# /etc/fstab: static file system information.\n",
		"# Use 'blkid' to print the universally unique identifier for a\n",
		"\nUUID=1234-ABCD /data vfat defaults 0 2\n",
		"\ntmpfs /tmp tmpfs size=10M 0 0\n",
		"\nnot-a-valid-line\n",
		"# (removed: overlay is /) /dev/disk/by-path/platform-2198000.usdhc-part1 / ext4",
		"# (removed: swap) /dev/mmcblk0p3 none swap sw 0 0",
	}
	for _, s := range mustContain {
		if !strings.Contains(got, s) {
			t.Errorf("rewritten fstab lacks %q:\n%s", s, got)
		}
	}
	// No live entry mounts / or swap.
	for _, l := range Parse(out) {
		if l.Entry != nil && (l.Entry.IsRoot() || l.Entry.IsSwap()) {
			t.Errorf("live entry left: %q", l.Raw)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "not-a-valid-line") || !strings.Contains(warns[0], "line 10") {
		t.Errorf("warnings = %q", warns)
	}
	// The real-root entry comes before every original line.
	if strings.Index(got, "/mnt/root-RO ext4 ro") > strings.Index(got, "static file system information") {
		t.Error("real-root entry is not first")
	}
}

func TestRewriteOptions(t *testing.T) {
	for _, tc := range []struct{ opts, want string }{
		{"ro", "ro"},
		{"rw", "ro"},
		{"defaults", "ro"},
		{"", "ro"},
		{"rw,noatime,data=ordered", "ro,noatime,data=ordered"},
	} {
		out, _ := Rewrite([]byte("/dev/vda / ext4 rw 0 1\n"), RealRoot{Spec: "/dev/vda", VfsType: "ext4", Options: tc.opts})
		if !strings.Contains(string(out), "/dev/vda /mnt/root-RO ext4 "+tc.want+" 0 0\n") {
			t.Errorf("options %q: got\n%s", tc.opts, out)
		}
	}
}

func TestRewriteNoFstab(t *testing.T) {
	out, warns := Rewrite(nil, RealRoot{Spec: "UUID=ab", VfsType: "ext4"})
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if !strings.Contains(string(out), "\nUUID=ab /mnt/root-RO ext4 ro 0 0\n") || !strings.Contains(string(out), "had no /etc/fstab") {
		t.Errorf("got:\n%s", out)
	}
}

func TestRewriteNoRootLine(t *testing.T) {
	out, _ := Rewrite([]byte("proc /proc proc defaults 0 0\n"), RealRoot{Spec: "LABEL=root", VfsType: "", Options: "ro"})
	if !strings.Contains(string(out), "\nLABEL=root /mnt/root-RO auto ro 0 0\n") || !strings.Contains(string(out), "\nproc /proc proc defaults 0 0\n") {
		t.Errorf("got:\n%s", out)
	}
}

func TestRewriteReplacesOldRealRootLine(t *testing.T) {
	out, _ := Rewrite([]byte("/dev/vda /mnt/root-RO ext4 rw 0 0\n"), RealRoot{Spec: "/dev/vda", VfsType: "ext4"})
	n := 0
	for _, l := range Parse(out) {
		if l.Entry != nil && l.Entry.File == "/mnt/root-RO" {
			n++
			if !strings.HasPrefix(l.Entry.MntOps, "ro") {
				t.Errorf("writable real root entry: %q", l.Raw)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d entries for /mnt/root-RO:\n%s", n, out)
	}
}

func TestRewriteNoTrailingNewline(t *testing.T) {
	out, _ := Rewrite([]byte("# c\nLABEL=d /data ext4 defaults"), RealRoot{Spec: "/dev/vda"})
	if !strings.HasSuffix(string(out), "LABEL=d /data ext4 defaults\n") {
		t.Errorf("got:\n%s", out)
	}
}

func FuzzRewrite(f *testing.F) {
	f.Add([]byte(seedFstab))
	f.Add([]byte("\x00\n\\0777 / \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _ := Rewrite(data, RealRoot{Spec: "/dev/vda", VfsType: "ext4"})
		for _, l := range Parse(out) {
			if l.Entry != nil && (l.Entry.IsRoot() || l.Entry.IsSwap()) {
				t.Fatalf("live / or swap entry left: %q", l.Raw)
			}
		}
	})
}

func TestForceRootReadOnly(t *testing.T) {
	out, changed := ForceRootReadOnly([]byte("# hi\nUUID=x / ext4 errors=remount-ro 0 1\n/dev/vdb /data ext4 rw 0 2\n"))
	if !changed {
		t.Fatal("not changed")
	}
	want := "# hi\n# ofsroot: degraded boot, root forced read-only; was: UUID=x / ext4 errors=remount-ro 0 1\nUUID=x / ext4 ro,errors=remount-ro 0 0\n/dev/vdb /data ext4 rw 0 2\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if _, changed := ForceRootReadOnly([]byte("/dev/vda / ext4 ro\n")); changed {
		t.Error("an ro root changed")
	}
	if _, changed := ForceRootReadOnly([]byte("/dev/vda /home ext4 rw\n")); changed {
		t.Error("no root, yet changed")
	}
}
