package fstab

import "testing"

func TestEditEntries(t *testing.T) {
	in := "# head\nLABEL=boot /boot ext4 defaults 0 2\n\nLABEL=log /var/log ext4 rw,noatime 0 2\nLABEL=data /data ext4\nbroken\n"
	out := EditEntries([]byte(in), func(e Entry, raw string) ([]string, bool) {
		switch e.File {
		case "/boot":
			return []string{"# was: " + raw}, true
		case "/var/log", "/data":
			return []string{e.ReadOnlyLine()}, true
		}
		return nil, false
	})
	want := "# head\n# was: LABEL=boot /boot ext4 defaults 0 2\n\nLABEL=log /var/log ext4 ro,noatime 0 0\nLABEL=data /data ext4 ro\nbroken\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestReadOnlyLine(t *testing.T) {
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{Spec: "/dev/a", File: "/a b", VfsType: "ext4", MntOps: "defaults"}, `/dev/a /a\040b ext4 ro`},
		{Entry{Spec: "/dev/a", File: "/a", VfsType: "vfat", MntOps: "rw,umask=077", Freq: "0", PassNo: "2"}, "/dev/a /a vfat ro,umask=077 0 0"},
		{Entry{Spec: "/dev/a", File: "/a", VfsType: "auto", MntOps: "ro", Freq: "1"}, "/dev/a /a auto ro 1"},
	} {
		if got := tc.e.ReadOnlyLine(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
	if !(Entry{MntOps: "defaults,noauto"}).HasOption("noauto") || (Entry{MntOps: "noautox"}).HasOption("noauto") {
		t.Error("HasOption")
	}
}
