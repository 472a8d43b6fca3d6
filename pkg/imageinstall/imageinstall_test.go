package imageinstall

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

var words = []string{"overlayfs=yes", "ofs-size=20"}

func TestEditWords(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"root=/dev/mmcblk0p2 ro rootwait", "root=/dev/mmcblk0p2 ro rootwait overlayfs=yes ofs-size=20", true},
		{"root=X overlayfs=no quiet", "root=X overlayfs=yes quiet ofs-size=20", true},
		{"root=X overlayfs=yes ofs-size=20", "root=X overlayfs=yes ofs-size=20", false},
		{"ofs-size=50 root=X ofs-size=30 overlayfs=yes", "ofs-size=20 root=X overlayfs=yes", true},
		{"", "overlayfs=yes ofs-size=20", true},
	} {
		got, changed := EditWords(strings.Fields(tc.in), words)
		if strings.Join(got, " ") != tc.want || changed != tc.changed {
			t.Errorf("EditWords(%q) = %q, %v; want %q, %v", tc.in, strings.Join(got, " "), changed, tc.want, tc.changed)
		}
	}
	if got, ch := EditCmdlineTxt("console=ttyS0 root=/dev/sda2\n", words); got != "console=ttyS0 root=/dev/sda2 overlayfs=yes ofs-size=20\n" || !ch {
		t.Errorf("EditCmdlineTxt = %q, %v", got, ch)
	}
	if got, ch := EditCmdlineTxt("a overlayfs=yes ofs-size=20\n", words); got != "a overlayfs=yes ofs-size=20\n" || ch {
		t.Errorf("unchanged cmdline.txt = %q, %v", got, ch)
	}
}

const extlinux = `## /boot/extlinux/extlinux.conf
## IMPORTANT WARNING
default l0
menu title U-Boot menu
timeout 50

label l0
	menu label Debian GNU/Linux 12 (bookworm) 6.1.0-50-armmp
	linux /boot/vmlinuz-6.1.0-50-armmp
	initrd /boot/initrd.img-6.1.0-50-armmp
	fdtdir /usr/lib/linux-image-6.1.0-50-armmp/
	append root=/dev/mmcblk0p1 ro quiet

label l0r
	menu label Debian GNU/Linux 12 (bookworm) 6.1.0-50-armmp (rescue target)
	APPEND root=/dev/mmcblk0p1 ro single overlayfs=no
`

func TestEditExtlinux(t *testing.T) {
	ed := EditExtlinux(extlinux, words)
	if ed.Appends != 1 || ed.Changed != 1 {
		t.Errorf("appends %d, changed %d", ed.Appends, ed.Changed)
	}
	// The rescue entry has no initrd line: the overlay words would mean
	// nothing to the kernel it boots, so it is left as it was.
	want := strings.Replace(extlinux, "\tappend root=/dev/mmcblk0p1 ro quiet\n", "\tappend root=/dev/mmcblk0p1 ro quiet overlayfs=yes ofs-size=20\n", 1)
	if ed.Text != want {
		t.Errorf("got:\n%s\nwant:\n%s", ed.Text, want)
	}
	if len(ed.Skipped) != 1 || ed.Skipped[0] != "l0r" {
		t.Errorf("skipped %q, want [l0r]", ed.Skipped)
	}
	again := EditExtlinux(ed.Text, words)
	if again.Text != ed.Text || again.Changed != 0 {
		t.Error("a second edit changed it again")
	}
}

// TestEditExtlinuxEntries tries the layouts an extlinux.conf comes in:
// which append lines are edited depends on whether their entry loads an
// initramfs, by an initrd line or an initrd= word, own or inherited.
func TestEditExtlinuxEntries(t *testing.T) {
	const w = " overlayfs=yes ofs-size=20"
	for _, c := range []struct {
		name, in string
		edited   []string // the append lines that must gain the words
		kept     []string // the append lines that must not
		skipped  int
	}{
		{"no append line", "default x\nlabel x\n  kernel /zImage\n  initrd /initrd\n", nil, nil, 0},
		{"no initrd anywhere", "label a\n kernel /k\n append root=/dev/sda1\n", nil, []string{" append root=/dev/sda1"}, 1},
		{"initrd= word", "label a\n kernel /k\n append initrd=/i root=/dev/sda1\n", []string{" append initrd=/i root=/dev/sda1"}, nil, 0},
		{"upper-case keywords", "LABEL a\n KERNEL /k\n INITRD /i\n APPEND root=/dev/sda1\n", []string{" APPEND root=/dev/sda1"}, nil, 0},
		{"global append used by an initrd entry",
			"append root=/dev/sda1\nlabel a\n kernel /k\n initrd /i\n",
			[]string{"append root=/dev/sda1"}, nil, 0},
		{"global append, only entries without initrd",
			"append root=/dev/sda1\nlabel a\n kernel /k\n",
			nil, []string{"append root=/dev/sda1"}, 1},
		{"global initrd= word inherited",
			"append initrd=/i root=/dev/sda1\nlabel a\n kernel /k\nlabel b\n kernel /k2\n append root=/dev/sdb1\n",
			[]string{"append initrd=/i root=/dev/sda1"}, []string{" append root=/dev/sdb1"}, 1},
		{"two entries, one rescue",
			"label a\n\tlinux /k\n\tinitrd /i\n\tappend ro\nlabel r\n\tlinux /k\n\tappend ro single\n",
			[]string{"\tappend ro"}, []string{"\tappend ro single"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ed := EditExtlinux(c.in, words)
			lines := strings.Split(ed.Text, "\n")
			has := func(l string) bool {
				for _, x := range lines {
					if x == l {
						return true
					}
				}
				return false
			}
			for _, l := range c.edited {
				if !has(l + w) {
					t.Errorf("%q not edited:\n%s", l, ed.Text)
				}
			}
			for _, l := range c.kept {
				if !has(l) {
					t.Errorf("%q changed:\n%s", l, ed.Text)
				}
			}
			if ed.Appends != len(c.edited) || ed.Changed != len(c.edited) {
				t.Errorf("appends %d, changed %d, want %d", ed.Appends, ed.Changed, len(c.edited))
			}
			if len(ed.Skipped) != c.skipped {
				t.Errorf("skipped %q, want %d", ed.Skipped, c.skipped)
			}
		})
	}
}

// debianRoot writes a root folder the way Debian lays out an installed
// kernel with u-boot-menu, and a stand-in initramfs.
func debianRoot(t *testing.T) (root, initrd string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "root")
	files := map[string]string{
		"etc/fstab":                                "/dev/mmcblk0p1 / ext4 defaults 0 1\n",
		"sbin/init":                                "#!/bin/sh\n",
		"boot/vmlinuz-6.1.0-50-armmp":              "kernel",
		"boot/initrd.img-6.1.0-50-armmp":           "initramfs-tools' initrd",
		"boot/extlinux/extlinux.conf":              extlinux,
		"lib/modules/6.1.0-50-armmp/modules.order": "",
		"home/user/data":                           "keep me",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	initrd = filepath.Join(t.TempDir(), "ofsroot-initrd")
	os.WriteFile(initrd, []byte("ofsroot initramfs"), 0o644)
	return root, initrd
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	return out
}

func TestInstallFolder(t *testing.T) {
	root, initrd := debianRoot(t)
	b, _ := board.Lookup("sabrelite")
	before := snapshot(t, root)
	res, err := Install(Options{Board: b, Initramfs: initrd, Target: root})
	if err != nil {
		t.Fatal(err)
	}
	if res.KernelVersion != "6.1.0-50-armmp" || len(res.Changes) != 2 {
		t.Fatalf("result %+v", res)
	}
	if c := res.Changes[0]; c.Path != "/boot/initrd.img-6.1.0-50-armmp" || c.Action != "replaced" || !strings.HasSuffix(c.Backup, "initrd.img-6.1.0-50-armmp.ofsroot-old") {
		t.Errorf("change 0: %+v", c)
	}
	if c := res.Changes[1]; c.Path != "/boot/extlinux/extlinux.conf" || c.Action != "edited" || !strings.Contains(c.String(), "1 append line(s) now have overlayfs=yes ofs-size=20") {
		t.Errorf("change 1: %s", c)
	}
	if len(res.Advice) != 1 || !strings.Contains(res.Advice[0], `entry "l0r" loads no initramfs`) {
		t.Errorf("advice %q, want the rescue entry named as left alone", res.Advice)
	}
	after := snapshot(t, root)
	want := map[string]string{
		"boot/initrd.img-6.1.0-50-armmp":             "ofsroot initramfs",
		"boot/initrd.img-6.1.0-50-armmp.ofsroot-old": "initramfs-tools' initrd",
		"boot/extlinux/extlinux.conf.ofsroot-old":    extlinux,
	}
	for name, data := range after {
		w, ok := want[name]
		if !ok {
			w, ok = before[name]
		}
		if name == "boot/extlinux/extlinux.conf" {
			if !strings.Contains(data, "append root=/dev/mmcblk0p1 ro quiet overlayfs=yes ofs-size=20") {
				t.Errorf("extlinux.conf not edited:\n%s", data)
			}
			continue
		}
		if !ok || data != w {
			t.Errorf("%s: %q, want %q (known before: %v)", name, data, w, ok)
		}
	}
	if len(after) != len(before)+2 {
		t.Errorf("%d files before, %d after; want 2 backups more", len(before), len(after))
	}

	// Again: the original backups stay; the config is not edited twice.
	res, err = Install(Options{Board: b, Initramfs: initrd, Target: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 || res.Changes[0].Backup != "" || !strings.Contains(res.Changes[0].Note, "the copy from before the first install is kept") {
		t.Errorf("second install: %+v", res.Changes)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "boot/initrd.img-6.1.0-50-armmp.ofsroot-old")); string(got) != "initramfs-tools' initrd" {
		t.Errorf("the original backup was overwritten: %q", got)
	}
}

func TestInstallRefusals(t *testing.T) {
	root, initrd := debianRoot(t)
	b, _ := board.Lookup("sabrelite")
	before := snapshot(t, root)

	// A kernel that is not the target's.
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "boot"), 0o755)
	os.WriteFile(filepath.Join(other, "boot/vmlinuz-6.1.0-99-armmp"), []byte("k"), 0o644)
	_, err := Install(Options{Board: b, Kernel: other, Initramfs: initrd, Target: root})
	if err == nil || !strings.Contains(err.Error(), "kernel 6.1.0-99-armmp") || !strings.Contains(err.Error(), "modules for 6.1.0-50-armmp only") {
		t.Errorf("foreign kernel: %v", err)
	}
	// Two kernels and no --kernel.
	os.MkdirAll(filepath.Join(root, "lib/modules/6.1.0-51-armmp"), 0o755)
	if _, err := Install(Options{Board: b, Initramfs: initrd, Target: root}); err == nil || !strings.Contains(err.Error(), "several kernels (6.1.0-50-armmp, 6.1.0-51-armmp): give --kernel") {
		t.Errorf("two kernels: %v", err)
	}
	os.RemoveAll(filepath.Join(root, "lib/modules/6.1.0-51-armmp"))
	// No kernel beside /boot.
	os.Rename(filepath.Join(root, "boot/vmlinuz-6.1.0-50-armmp"), filepath.Join(root, "vmlinuz.away"))
	if _, err := Install(Options{Board: b, Initramfs: initrd, Target: root}); err == nil || !strings.Contains(err.Error(), "no kernel for 6.1.0-50-armmp") {
		t.Errorf("no kernel: %v", err)
	}
	os.Rename(filepath.Join(root, "vmlinuz.away"), filepath.Join(root, "boot/vmlinuz-6.1.0-50-armmp"))
	if _, err := Install(Options{Board: b, Initramfs: initrd, Target: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "has no etc/") {
		t.Errorf("empty folder: %v", err)
	}
	after := snapshot(t, root)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Error("a refused install changed the target")
	}
}

func run(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, o)
	}
}

func sum(t *testing.T, img string, off, size int64) [32]byte {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, off, size))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestInstallImage: an image made with sfdisk, mkfs.vfat and mkfs.ext4
// (a FAT boot partition with zImage, cmdline.txt and boot.scr, and an
// ext4 root). The install writes only the boot partition; the root
// partition's bytes stay the same.
func TestInstallImage(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	mountfstest.NeedTools(t, "sfdisk", "mkfs.vfat", "mcopy", "mtype", "mkfs.ext4", "mount", "losetup", "fsck.vfat")
	root, initrd := debianRoot(t)
	os.RemoveAll(filepath.Join(root, "boot"))
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	bootDir := filepath.Join(t.TempDir(), "boot")
	os.MkdirAll(bootDir, 0o755)
	os.WriteFile(filepath.Join(bootDir, "zImage"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(bootDir, "cmdline.txt"), []byte("console=ttymxc1,115200 root=/dev/mmcblk3p2 rootwait\n"), 0o644)
	os.WriteFile(filepath.Join(bootDir, "boot.scr"), []byte("script"), 0o644)

	img := filepath.Join(t.TempDir(), "foreign.img")
	run(t, "", "truncate", "-s", "64M", img)
	run(t, "label: dos\nstart=2048, size=32768, type=c, bootable\nstart=34816, type=83\n", "sfdisk", "-q", img)
	run(t, "", "mkfs.vfat", "--offset", "2048", img, "16384")
	run(t, "", "mcopy", "-i", img+"@@1M", filepath.Join(bootDir, "zImage"), filepath.Join(bootDir, "cmdline.txt"), filepath.Join(bootDir, "boot.scr"), "::/")
	run(t, "", "mkfs.ext4", "-q", "-d", root, "-E", fmt.Sprintf("offset=%d", 34816*512), img, "30M")
	rootBefore := sum(t, img, 34816*512, 30<<20)

	b, _ := board.Lookup("sabrelite")
	res, err := Install(Options{Board: b, Initramfs: initrd, Target: img})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Root, "partition 2 (ext4)") || !strings.Contains(res.Boot, "partition 1 (vfat)") {
		t.Errorf("root %q boot %q", res.Root, res.Boot)
	}
	var lines []string
	for _, c := range res.Changes {
		lines = append(lines, c.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{"added    (partition 1)/initrd.img: ofsroot initramfs for sabrelite, kernel 6.1.0-50-armmp",
		"edited   (partition 1)/cmdline.txt: now has overlayfs=yes ofs-size=20 (the old one is kept as cmdline.txt.ofsroot-old)"} {
		if !strings.Contains(got, want) {
			t.Errorf("changes lack %q:\n%s", want, got)
		}
	}
	if len(res.Advice) != 1 || !strings.Contains(res.Advice[0], "boot.scr (a U-Boot script) is not edited") {
		t.Errorf("advice %q", res.Advice)
	}
	if sum(t, img, 34816*512, 30<<20) != rootBefore {
		t.Error("the root partition changed")
	}
	for name, want := range map[string]string{"initrd.img": "ofsroot initramfs", "zImage": "kernel", "boot.scr": "script",
		"cmdline.txt":             "console=ttymxc1,115200 root=/dev/mmcblk3p2 rootwait overlayfs=yes ofs-size=20\n",
		"cmdline.txt.ofsroot-old": "console=ttymxc1,115200 root=/dev/mmcblk3p2 rootwait\n"} {
		o, err := exec.Command("mtype", "-i", img+"@@1M", "::/"+name).Output()
		if err != nil || !bytes.Equal(o, []byte(want)) {
			t.Errorf("%s on the boot partition: %q, %v; want %q", name, o, err, want)
		}
	}

	// The same disk as a block device: a second install replaces the
	// initramfs, keeps the first backup, leaves cmdline.txt as it is.
	o, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(o))
	defer exec.Command("losetup", "-d", dev).Run()
	os.WriteFile(initrd, []byte("ofsroot initramfs, second"), 0o644)
	res, err = Install(Options{Board: b, Initramfs: initrd, Target: dev})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 || res.Changes[0].Action != "replaced" || res.Changes[0].Path != "(partition 1)/initrd.img" || res.Changes[0].Backup == "" {
		t.Errorf("install into %s: %+v", dev, res.Changes)
	}
	exec.Command("losetup", "-d", dev).Run()
	for name, want := range map[string]string{"initrd.img": "ofsroot initramfs, second", "initrd.img.ofsroot-old": "ofsroot initramfs"} {
		o, err := exec.Command("mtype", "-i", img+"@@1M", "::/"+name).Output()
		if err != nil || string(o) != want {
			t.Errorf("%s after the second install: %q, %v; want %q", name, o, err, want)
		}
	}
	if sum(t, img, 34816*512, 30<<20) != rootBefore {
		t.Error("the root partition changed")
	}
	fat := filepath.Join(t.TempDir(), "boot.fat")
	run(t, "", "dd", "if="+img, "of="+fat, "bs=1M", "skip=1", "count=16", "status=none")
	if o, err := exec.Command("fsck.vfat", "-n", fat).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, o)
	}
}
