package diskimage

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func TestPlan(t *testing.T) {
	l, err := Plan(PlanSpec{Table: "mbr", BootSize: 32 * MiB, RootSize: 64 * MiB, DataSize: 16 * MiB, RootFSType: "ext4", Seed: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Partitions) != 3 || l.SizeBytes != (1+32+64+16)*MiB {
		t.Fatalf("layout %+v", l)
	}
	for i, want := range []struct {
		role  string
		start int64
	}{{RoleBoot, MiB}, {RoleRoot, 33 * MiB}, {RoleData, 97 * MiB}} {
		p := l.Partitions[i]
		if p.Role != want.role || p.Start != want.start || p.Number != i+1 {
			t.Errorf("partition %d: %+v, want %s at %d", i+1, p, want.role, want.start)
		}
		if p.PartUUID != fmt.Sprintf("%s-%02d", l.DiskID, i+1) {
			t.Errorf("PARTUUID %q", p.PartUUID)
		}
	}
	again, _ := Plan(PlanSpec{Table: "mbr", BootSize: 32 * MiB, RootSize: 64 * MiB, DataSize: 16 * MiB, RootFSType: "ext4", Seed: "s"})
	other, _ := Plan(PlanSpec{Table: "mbr", BootSize: 32 * MiB, RootSize: 64 * MiB, DataSize: 16 * MiB, RootFSType: "ext4", Seed: "t"})
	if again.DiskID != l.DiskID || other.DiskID == l.DiskID || len(l.DiskID) != 8 {
		t.Errorf("disk IDs: %s %s %s", l.DiskID, again.DiskID, other.DiskID)
	}

	g, err := Plan(PlanSpec{Table: "gpt", BootSize: 32 * MiB, RootSize: 64 * MiB, RootFSType: "squashfs", PowerOfTwo: true, Seed: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if g.SizeBytes != 128*MiB || len(g.Partitions) != 2 {
		t.Errorf("gpt power of two: %+v", g)
	}
	r, _ := g.Partition(RoleRoot)
	if len(r.PartUUID) != 36 || r.PartUUID[14] != '4' || r.FSUUID != "" {
		t.Errorf("gpt root %+v", r)
	}
	for _, bad := range []PlanSpec{
		{Table: "apm", BootSize: MiB, RootSize: MiB},
		{Table: "mbr", BootSize: 0, RootSize: MiB},
		{Table: "mbr", BootSize: MiB, RootSize: 1000},
		{Table: "mbr", BootSize: MiB, RootSize: MiB, DataSize: -MiB},
	} {
		if _, err := Plan(bad); err == nil {
			t.Errorf("Plan(%+v): want an error", bad)
		}
	}
}

func TestSizes(t *testing.T) {
	if got := BootSize(0); got != BootMin {
		t.Errorf("BootSize(0) = %d", got)
	}
	if got := BootSize(40 * MiB); got != 58*MiB {
		t.Errorf("BootSize(40 MiB) = %d MiB, want 40+10+8", got/MiB)
	}
	if got := RootSize(100*256, 4096); got != alignUp(100*MiB+25*MiB+4096*256+16*MiB) {
		t.Errorf("RootSize = %d", got)
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"64M", 64 << 20, true}, {"1G", 1 << 30, true}, {"512k", 512 << 10, true}, {"4096", 4096, true},
		{"", 0, false}, {"M", 0, false}, {"-1M", 0, false}, {"1.5M", 0, false}, {"10T", 0, false}, {"99999999999G", 0, false}} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestCmdlineAndExtlinux(t *testing.T) {
	root := Partition{PartUUID: "0a0b0c0d-02", FSType: "squashfs"}
	got := Cmdline("ttymxc1,115200", root, nil)
	want := "console=ttymxc1,115200 root=PARTUUID=0a0b0c0d-02 rootfstype=squashfs ro rootwait overlayfs=yes ofs-size=20"
	if got != want {
		t.Errorf("Cmdline = %q\nwant %q", got, want)
	}
	if got := Cmdline("", root, []string{"overlayfs=no"}); got != "root=PARTUUID=0a0b0c0d-02 rootfstype=squashfs ro rootwait overlayfs=no" {
		t.Errorf("Cmdline = %q", got)
	}
	x := Extlinux("sabrelite", "imx6q-sabrelite.dtb", want)
	for _, s := range []string{"default ofsroot", "label ofsroot", "kernel /vmlinuz", "initrd /initrd.img", "fdt /imx6q-sabrelite.dtb", "append " + want} {
		if !strings.Contains(x, s) {
			t.Errorf("extlinux.conf lacks %q:\n%s", s, x)
		}
	}
	if strings.Contains(Extlinux("qemu-x86_64", "", want), "fdt") {
		t.Error("no device tree: no fdt line")
	}
}

// fakeKernel makes a kernel folder as dpkg -x leaves one, with a device
// tree, and a stand-in initramfs.
func fakeKernel(t *testing.T) (dir, initrd string) {
	dir = t.TempDir()
	const v = "6.1.0-99-test"
	for name, size := range map[string]int{"boot/vmlinuz-" + v: 300 << 10, "usr/lib/linux-image-" + v + "/imx6q-sabrelite.dtb": 40 << 10, "initrd": 200 << 10} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "lib/modules", v), 0o755)
	return dir, filepath.Join(dir, "initrd")
}

// sourceTree writes a root with what a real one has: owners, set-id and
// sticky modes, device nodes, a fifo, symbolic and hard links, xattrs.
func sourceTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "dev", "etc", "tmp", "home/user", "sbin"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("img\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*:1::::::\n"), 0o640))
	must(os.Chown(filepath.Join(root, "etc/shadow"), 0, 42))
	must(os.WriteFile(filepath.Join(root, "bin/su"), bytes.Repeat([]byte{0x7f}, 70000), 0o755))
	must(unix.Chmod(filepath.Join(root, "bin/su"), 0o4755))
	must(unix.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.Chown(filepath.Join(root, "home/user"), 1000, 1000))
	must(os.WriteFile(filepath.Join(root, "home/user/notes"), []byte("hi"), 0o600))
	must(os.Chown(filepath.Join(root, "home/user/notes"), 1000, 1000))
	must(os.Symlink("../bin/su", filepath.Join(root, "sbin/su")))
	must(os.Symlink(strings.Repeat("long/", 20)+"target", filepath.Join(root, "sbin/dangling")))
	must(os.Link(filepath.Join(root, "etc/hostname"), filepath.Join(root, "etc/hostname.hard")))
	must(unix.Mknod(filepath.Join(root, "dev/console"), unix.S_IFCHR|0o600, int(unix.Mkdev(5, 1))))
	must(unix.Mknod(filepath.Join(root, "dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))))
	must(os.Chown(filepath.Join(root, "dev/sda"), 0, 6))
	must(unix.Chmod(filepath.Join(root, "dev/sda"), 0o660)) // whatever the umask
	must(unix.Mkfifo(filepath.Join(root, "dev/initctl"), 0o600))
	must(unix.Setxattr(filepath.Join(root, "bin/su"), "security.capability", []byte{1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	must(unix.Setxattr(filepath.Join(root, "etc/hostname"), "user.note", []byte("kept"), 0))
	return root
}

// TestBuild builds MBR/ext4 and GPT/squashfs images of the same tree and
// checks them with sfdisk, blkid, e2fsck, fsck.vfat, unsquashfs and by
// mounting them: owners, modes, device nodes, links and xattrs as in the
// source. Building twice with SOURCE_DATE_EPOCH gives the same bytes.
func TestBuild(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "mkfs.vfat", "mcopy", "mkfs.ext4", "debugfs", "mksquashfs", "unsquashfs", "sfdisk", "blkid", "e2fsck", "fsck.vfat", "tar")
	// The caller's own SOURCE_DATE_EPOCH must not reach the tools
	// (mksquashfs refuses it together with -mkfs-time).
	t.Setenv("SOURCE_DATE_EPOCH", "1")
	kdir, initrd := fakeKernel(t)
	src := sourceTree(t)
	b, err := board.Lookup("sabrelite")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, tc := range []struct {
		name, table, rootType string
		data                  int64
		tar                   bool
		script                bool // ofsroot's boot.scr (the default for U-Boot boards), not --extlinux
	}{
		{"mbr-ext4-data", "mbr", "ext4", 8 * MiB, false, false},
		{"gpt-squashfs-tar", "gpt", "squashfs", 0, true, false},
		{"mbr-ext4-script", "mbr", "ext4", 8 * MiB, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := src
			if tc.tar {
				rootfs = filepath.Join(out, tc.name+".tar.gz")
				if o, err := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-czf", rootfs, "-C", src, ".").CombinedOutput(); err != nil {
					t.Fatalf("tar: %v\n%s", err, o)
				}
			}
			opts := Options{Board: b, Kernel: kdir, Initramfs: initrd, RootFS: rootfs, RootType: tc.rootType, Table: tc.table,
				DataSize: tc.data, SourceDateEpoch: 1704067200, Output: filepath.Join(out, tc.name+".img"),
				BootFiles: []BootFile{{Source: initrd, Name: "uInitrd"}}}
			if tc.script {
				opts.BootFiles = nil
			} else {
				opts.Extlinux = true
			}
			res, err := Build(opts)
			if err != nil {
				t.Fatal(err)
			}
			img := res.Output
			if res.Layout.SizeBytes&(res.Layout.SizeBytes-1) != 0 {
				t.Errorf("sabrelite needs a power-of-two image: %d", res.Layout.SizeBytes)
			}
			checkTable(t, img, res.Layout)
			checkBlkid(t, img, res.Layout)
			boot, _ := res.Layout.Partition(RoleBoot)
			root, _ := res.Layout.Partition(RoleRoot)
			bootFS := extract(t, img, boot)
			if o, err := exec.Command("fsck.vfat", "-n", bootFS).CombinedOutput(); err != nil {
				t.Errorf("fsck.vfat -n: %v\n%s", err, o)
			}
			o, _ := exec.Command("mdir", "-/", "-b", "-i", bootFS, "::/").CombinedOutput()
			want, absent := []string{"vmlinuz", "initrd.img", "imx6q-sabrelite.dtb", "cmdline.txt", "extlinux/extlinux.conf", "uInitrd"}, []string{"boot.scr"}
			if tc.script {
				// The script loads its own files; an extlinux.conf
				// would shadow it in U-Boot's distro boot.
				want, absent = []string{"boot.scr", "boot.cmd", "zImage", "uInitrd", "imx6q-sabrelite.dtb", "cmdline.txt"}, []string{"extlinux", "vmlinuz", "initrd.img"}
				cmd, _ := exec.Command("mtype", "-i", bootFS, "::/boot.cmd").Output()
				for _, w := range []string{`ofs_root="PARTUUID=` + root.PartUUID + `"`, "rootfstype=ext4 ro rootwait overlayfs=yes ofs-size=20", "ofs_overlay=yes"} {
					if !strings.Contains(string(cmd), w) {
						t.Errorf("boot.cmd lacks %q:\n%s", w, cmd)
					}
				}
			}
			for _, f := range want {
				if !strings.Contains(string(o), "::/"+f) {
					t.Errorf("boot partition lacks %s:\n%s", f, o)
				}
			}
			for _, f := range absent {
				if strings.Contains(string(o), "::/"+f) {
					t.Errorf("boot partition has %s:\n%s", f, o)
				}
			}
			cl, _ := exec.Command("mtype", "-i", bootFS, "::/cmdline.txt").Output()
			if strings.TrimSpace(string(cl)) != res.Cmdline || !strings.Contains(res.Cmdline, "root=PARTUUID="+root.PartUUID) {
				t.Errorf("cmdline.txt %q, result %q", cl, res.Cmdline)
			}
			if tc.rootType == "ext4" {
				if o, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, root.Start)).CombinedOutput(); err != nil {
					t.Errorf("e2fsck -fn: %v\n%s", err, o)
				}
				data, _ := res.Layout.Partition(RoleData)
				if o, err := exec.Command("e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, data.Start)).CombinedOutput(); err != nil {
					t.Errorf("e2fsck -fn data: %v\n%s", err, o)
				}
			} else {
				o, err := exec.Command("unsquashfs", "-lln", extract(t, img, root)).CombinedOutput()
				if err != nil {
					t.Errorf("unsquashfs -lln: %v\n%s", err, o)
				}
				for _, want := range []string{"crw------- 0/0", "/dev/console", "-rwsr-xr-x 0/0", "/bin/su", "brw-rw---- 0/6", "1000/1000"} {
					if !strings.Contains(string(o), want) {
						t.Errorf("unsquashfs -lln lacks %q:\n%s", want, o)
					}
				}
			}
			mnt := t.TempDir()
			if o, err := exec.Command("mount", "-o", fmt.Sprintf("ro,loop,offset=%d,sizelimit=%d", root.Start, root.Size), "-t", tc.rootType, img, mnt).CombinedOutput(); err != nil {
				t.Fatalf("mount: %v\n%s", err, o)
			}
			defer exec.Command("umount", mnt).Run()
			compareTrees(t, src, mnt)
			// The build id a persistent layer is bound to.
			var st unix.Stat_t
			got, err := os.ReadFile(filepath.Join(mnt, BuildIDPath))
			if len(res.BuildID) != 32 || err != nil || string(got) != res.BuildID+"\n" || unix.Lstat(filepath.Join(mnt, BuildIDPath), &st) != nil || st.Mode != 0o100644 || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("/%s: %q %v (mode %o owner %d:%d), want %q", BuildIDPath, got, err, st.Mode, st.Uid, st.Gid, res.BuildID)
			}

			// The same inputs, the same bytes, also when the clock has
			// moved on (FAT keeps times in 2-second steps): a tool that
			// stamps the wall clock shows here. The tree is regenerated
			// too (every modification time now, later than the epoch):
			// SOURCE_DATE_EPOCH clamps them.
			time.Sleep(2100 * time.Millisecond)
			touchTree(t, src)
			if tc.tar {
				if o, err := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-czf", rootfs, "-C", src, ".").CombinedOutput(); err != nil {
					t.Fatalf("tar: %v\n%s", err, o)
				}
			}
			opts.Output = filepath.Join(out, tc.name+"-again.img")
			again, err := Build(opts)
			if err != nil {
				t.Fatal(err)
			}
			if again.SHA256 != res.SHA256 {
				t.Errorf("two builds differ: %s and %s", res.SHA256, again.SHA256)
			}
		})
	}
}

// touchTree sets every modification time under dir to now, as a tree
// made anew would have.
func touchTree(t *testing.T, dir string) {
	t.Helper()
	now := unix.NsecToTimespec(time.Now().UnixNano())
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{now, now}, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkTable(t *testing.T, img string, l Layout) {
	t.Helper()
	o, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var d struct {
		PT struct {
			Label, ID  string
			Partitions []struct {
				Start, Size int64
				Type, UUID  string
				Name        string
				Bootable    bool
			}
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(o, &d); err != nil {
		t.Fatal(err)
	}
	wantLabel, wantID := "dos", "0x"+l.DiskID
	if l.Table == "gpt" {
		wantLabel, wantID = "gpt", strings.ToUpper(l.DiskID)
	}
	if d.PT.Label != wantLabel || d.PT.ID != wantID || len(d.PT.Partitions) != len(l.Partitions) {
		t.Errorf("sfdisk: %+v, want %s %s", d.PT, wantLabel, wantID)
	}
	for i, p := range d.PT.Partitions {
		if i >= len(l.Partitions) {
			break
		}
		w := l.Partitions[i]
		if p.Start*512 != w.Start || p.Size*512 != w.Size {
			t.Errorf("partition %d at %d+%d sectors, want %d+%d bytes", i+1, p.Start, p.Size, w.Start, w.Size)
		}
		if l.Table == "gpt" && (p.UUID != strings.ToUpper(w.PartUUID) || p.Name != w.Role) {
			t.Errorf("gpt partition %d: %+v, want %s %s", i+1, p, w.PartUUID, w.Role)
		}
		if l.Table == "mbr" && (p.Bootable != (w.Role == RoleBoot)) {
			t.Errorf("mbr partition %d bootable=%v", i+1, p.Bootable)
		}
	}
	dump, _ := exec.Command("sfdisk", "-d", img).Output()
	if !strings.Contains(string(dump), "label-id: "+wantID) {
		t.Errorf("sfdisk -d:\n%s", dump)
	}
}

func checkBlkid(t *testing.T, img string, l Layout) {
	t.Helper()
	for _, p := range l.Partitions {
		o, err := exec.Command("blkid", "-p", "-O", fmt.Sprint(p.Start), "-S", fmt.Sprint(p.Size), "-o", "export", img).Output()
		if err != nil {
			t.Errorf("blkid partition %d: %v", p.Number, err)
			continue
		}
		s := string(o)
		if !strings.Contains(s, "TYPE="+p.FSType+"\n") {
			t.Errorf("blkid partition %d: %s, want TYPE=%s", p.Number, s, p.FSType)
		}
		if p.FSUUID != "" && !strings.Contains(s, "UUID="+p.FSUUID+"\n") {
			t.Errorf("blkid partition %d: %s, want UUID=%s", p.Number, s, p.FSUUID)
		}
		if p.Label != "" && !strings.Contains(s, "LABEL="+p.Label+"\n") {
			t.Errorf("blkid partition %d: %s, want LABEL=%s", p.Number, s, p.Label)
		}
	}
	o, _ := exec.Command("blkid", "-p", "-o", "export", img).Output()
	want := "PTTYPE=dos"
	if l.Table == "gpt" {
		want = "PTTYPE=gpt"
	}
	if !strings.Contains(string(o), want) {
		t.Errorf("blkid of the disk: %s, want %s", o, want)
	}
}

// extract copies partition p out of img into a file of its own.
func extract(t *testing.T, img string, p Partition) string {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	name := filepath.Join(t.TempDir(), fmt.Sprintf("part%d", p.Number))
	out, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, p.Start, p.Size)); err != nil {
		t.Fatal(err)
	}
	return name
}

// compareTrees checks every entry of src against the mounted dst.
func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	n := 0
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		var a, b unix.Stat_t
		unix.Lstat(p, &a)
		if err := unix.Lstat(filepath.Join(dst, rel), &b); err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || (fi.Mode().IsRegular() && a.Size != b.Size) {
			t.Errorf("%s: mode %o %d:%d dev %x size %d in the source, mode %o %d:%d dev %x size %d in the image",
				rel, a.Mode, a.Uid, a.Gid, a.Rdev, a.Size, b.Mode, b.Uid, b.Gid, b.Rdev, b.Size)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			x, _ := os.Readlink(p)
			y, _ := os.Readlink(filepath.Join(dst, rel))
			if x != y {
				t.Errorf("%s: link to %q, in the image %q", rel, x, y)
			}
		}
		if fi.Mode().IsRegular() {
			x, _ := os.ReadFile(p)
			y, _ := os.ReadFile(filepath.Join(dst, rel))
			if !bytes.Equal(x, y) {
				t.Errorf("%s: contents differ", rel)
			}
		}
		for _, attr := range []string{"security.capability", "user.note"} {
			x := make([]byte, 64)
			y := make([]byte, 64)
			nx, _ := unix.Lgetxattr(p, attr, x)
			ny, _ := unix.Lgetxattr(filepath.Join(dst, rel), attr, y)
			if nx > 0 && (nx != ny || !bytes.Equal(x[:nx], y[:max(ny, 0)])) {
				t.Errorf("%s: xattr %s %q, in the image %q", rel, attr, x[:nx], y[:max(ny, 0)])
			}
		}
		return nil
	})
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(src, "etc/hostname.hard"), &a)
	unix.Stat(filepath.Join(dst, "etc/hostname"), &b)
	if a.Nlink != 2 || b.Nlink != 2 {
		t.Errorf("hard link: %d links in the source, %d in the image", a.Nlink, b.Nlink)
	}
	if n < 15 {
		t.Errorf("compared only %d entries", n)
	}
}
