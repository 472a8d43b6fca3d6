package bootlab

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"github.com/ofsroot/ofsroot/pkg/diskimage"

	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/board"
)

func TestQEMUArgs(t *testing.T) {
	k := Kernel{Version: "6.1.0-50-armmp", Dir: t.TempDir(), Vmlinuz: "/k/vmlinuz"}
	dtbDir := filepath.Join(k.Dir, "usr/lib/linux-image-"+k.Version)
	os.MkdirAll(dtbDir, 0o755)
	os.WriteFile(filepath.Join(dtbDir, "imx6q-sabrelite.dtb"), nil, 0o644)

	want := map[string][]string{
		"qemu-x86_64": {"-accel", "tcg", "-m", "512", "-nographic", "-net", "none",
			"-drive", "file=/d/root.img,format=raw,if=virtio", "-no-reboot"},
		"qemu-arm-virt": {"-accel", "tcg", "-M", "virt", "-nographic",
			"-drive", "file=/d/root.img,format=raw,if=none,id=hd0", "-device", "virtio-blk-device,drive=hd0"},
		"sabrelite": {"-accel", "tcg", "-M", "sabrelite", "-smp", "1", "-m", "1024",
			"-display", "none", "-serial", "null", "-serial", "stdio",
			"-dtb", filepath.Join(dtbDir, "imx6q-sabrelite.dtb"),
			"-drive", "file=/d/root.img,format=raw,if=none,id=sd", "-device", "sd-card,drive=sd"},
	}
	for name, parts := range want {
		b, err := board.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		args, err := QEMUArgs(BootSpec{Board: b, Kernel: k, Initrd: "/i/initrd", Disk: "/d/root.img", Append: []string{"root=/dev/vda", "ro"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		line := " " + strings.Join(args, " ") + " "
		for i := 0; i < len(parts); {
			// Pairs like "-m 512" must stay together.
			n := 1
			if strings.HasPrefix(parts[i], "-") && i+1 < len(parts) && !strings.HasPrefix(parts[i+1], "-") {
				n = 2
			}
			frag := " " + strings.Join(parts[i:i+n], " ") + " "
			if !strings.Contains(line, frag) {
				t.Errorf("%s: command line lacks %q:\n%s", name, frag, line)
			}
			i += n
		}
		if args[0] != b.QEMU.Binary {
			t.Errorf("%s: binary %q, want %q", name, args[0], b.QEMU.Binary)
		}
		i := slices.Index(args, "-append")
		if i < 0 || args[i+1] != strings.Join(append(append([]string{"console=" + b.Console}, b.QEMU.KernelArgs...), "root=/dev/vda", "ro"), " ") {
			t.Errorf("%s: -append wrong in %q", name, args)
		}
		if slices.Contains(args, "-enable-kvm") || slices.Contains(args, "kvm") {
			t.Errorf("%s: KVM must not be used: %q", name, args)
		}
		if args[len(args)-1] != "-no-reboot" {
			t.Errorf("%s: -no-reboot missing at the end: %q", name, args)
		}
	}

	b, _ := board.Lookup("qemu-x86_64")
	if _, err := QEMUArgs(BootSpec{Board: b, Kernel: k, Disk: "/d/a,b.img"}); err == nil {
		t.Error("a comma in the disk path: want an error")
	}
	if _, err := QEMUArgs(BootSpec{Board: b, Kernel: k, Disk: "/d/a.img", ExtraDisks: []string{"/d/b,c.img"}}); err == nil {
		t.Error("a comma in an extra disk's path: want an error")
	}
	// Extra disks come after the root disk, each its own drive.
	for name, want := range map[string]string{
		"qemu-x86_64":   "-drive file=/d/root.img,format=raw,if=virtio -drive file=/d/layer.img,format=raw,if=virtio -drive file=/d/data.img,format=raw,if=virtio",
		"qemu-arm-virt": "-drive file=/d/root.img,format=raw,if=none,id=hd0 -device virtio-blk-device,drive=hd0 -drive file=/d/layer.img,format=raw,if=none,id=hd1 -device virtio-blk-device,drive=hd1 -drive file=/d/data.img,format=raw,if=none,id=hd2",
		"sabrelite":     "-drive file=/d/root.img,format=raw,if=none,id=sd -device sd-card,drive=sd -drive file=/d/layer.img,format=raw,if=none,id=sd1 -device sd-card,drive=sd1",
	} {
		bd, _ := board.Lookup(name)
		args, err := QEMUArgs(BootSpec{Board: bd, Kernel: k, Disk: "/d/root.img", ExtraDisks: []string{"/d/layer.img", "/d/data.img"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if line := strings.Join(args, " "); !strings.Contains(line, want) {
			t.Errorf("%s with extra disks:\n%s\nlacks\n%s", name, line, want)
		}
	}
	s, _ := board.Lookup("sabrelite")
	if _, err := QEMUArgs(BootSpec{Board: s, Kernel: Kernel{Version: "x", Dir: t.TempDir()}}); err == nil {
		t.Error("sabrelite without its device tree: want an error")
	}
}

func TestParseProbe(t *testing.T) {
	b64 := func(s string) string { return "base64:" + base64.StdEncoding.EncodeToString([]byte(s)) }
	console := strings.Join([]string{
		"[    2.7] kernel noise",
		"ofsroot: switching to /sbin/init",
		"PROBE BEGIN\r",
		"PROBE t=2.758223",
		"PROBE pid=1",
		`PROBE args=["/sbin/init","x"]`,
		`PROBE env=["HOME=/"]`,
		"PROBE mount=25 29 254:0 / /mnt/root-RO ro,relatime - ext4 /dev/vda ro",
		"PROBE mount=29 1 0:23 / / rw,relatime - overlay overlayfs-root rw",
		"PROBE rw.fstype=0x1021994",
		"PROBE rw.bsize=4096",
		"PROBE rw.blocks=23421",
		"PROBE memtotal=479657984",
		"PROBE write.root=ok",
		"PROBE write.upper=present",
		"PROBE write.lower=absent",
		"PROBE write.ro=EROFS",
		"PROBE fstab=" + b64("# in RAM\n"),
		"PROBE status=" + b64(`{"version":1,"mode":"protected","steps":[{"name":"mount","seconds":0.25}],"started_at":2.1}`),
		"PROBE block=vda /sys/devices/pci0000:00/0000:00:03.0/virtio0/block/vda",
		"PROBE error=something odd",
		"PROBE END",
		"[    2.85] reboot: Restarting system",
	}, "\n")
	r, err := ParseProbe(console)
	if err != nil {
		t.Fatal(err)
	}
	if r.T != 2.758223 || r.PID != 1 || !slices.Equal(r.Args, []string{"/sbin/init", "x"}) || r.Env[0] != "HOME=/" {
		t.Errorf("basics: %+v", r)
	}
	if m, ok := r.MountAt("/"); !ok || m.FSType != "overlay" {
		t.Errorf("MountAt(/) = %+v, %v", m, ok)
	}
	if _, ok := r.MountAt("/mnt/root-RW"); ok {
		t.Error("MountAt(/mnt/root-RW): nothing is mounted there")
	}
	if r.RW == nil || r.RW.Bytes() != 23421*4096 || r.RW.Type != 0x1021994 {
		t.Errorf("RW = %+v", r.RW)
	}
	if r.MemTotal != 479657984 || r.WriteRoot != "ok" || r.InUpper != "present" || r.InLower != "absent" || r.WriteRO != "EROFS" {
		t.Errorf("writes: %+v", r)
	}
	if r.Fstab != "# in RAM\n" {
		t.Errorf("Fstab = %q", r.Fstab)
	}
	if r.Status == nil || r.Status.Mode != "protected" || r.Status.Steps[0].Seconds != 0.25 {
		t.Errorf("Status = %+v (%s)", r.Status, r.StatusError)
	}
	if !strings.Contains(r.Block["vda"], "0000:00:03.0") {
		t.Errorf("Block = %v", r.Block)
	}
	if len(r.Problems) != 1 {
		t.Errorf("Problems = %q", r.Problems)
	}

	if _, err := ParseProbe("PROBE BEGIN\nPROBE t=1\n"); err != ErrNoProbe {
		t.Errorf("no END: err = %v, want ErrNoProbe", err)
	}
	r, err = ParseProbe("PROBE BEGIN\nPROBE status=error: ENOENT\nPROBE pid=x\nPROBE END\n")
	if err == nil {
		t.Error("pid=x: want an error")
	}
	if r.Status != nil || r.StatusError != "error: ENOENT" {
		t.Errorf("missing status: %+v %q", r.Status, r.StatusError)
	}
}

// TestParseProbeBlocks: the last complete BEGIN ... END block counts,
// whatever comes around it; a console with no complete block is
// ErrNoProbe, never a panic (one took the whole tests/ package down).
func TestParseProbeBlocks(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		pid           int
		err           error
	}{
		{"begin end begin", "PROBE BEGIN\nPROBE pid=1\nPROBE END\nPROBE BEGIN\nPROBE pid=2\n", 1, nil},
		{"two blocks", "PROBE BEGIN\nPROBE pid=1\nPROBE END\nPROBE BEGIN\nPROBE pid=2\nPROBE END\n", 2, nil},
		{"end first", "PROBE END\nPROBE BEGIN\nPROBE pid=3\nPROBE END\n", 3, nil},
		{"begin begin end", "PROBE BEGIN\nPROBE pid=4\nPROBE BEGIN\nPROBE pid=5\nPROBE END\n", 5, nil},
		{"end begin", "PROBE END\nPROBE BEGIN\nPROBE pid=6\n", 0, ErrNoProbe},
		{"end end", "PROBE END\nPROBE END\n", 0, ErrNoProbe},
		{"empty block", "PROBE BEGIN\nPROBE END\n", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseProbe(tc.console)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && r.PID != tc.pid {
				t.Errorf("pid %d, want %d (from the last complete block)", r.PID, tc.pid)
			}
		})
	}
}

// TestImages builds the probe and both root images for one board and
// checks them with e2fsck and sfdisk. It needs go, mkfs.ext4, sfdisk and
// e2fsck, not QEMU.
func TestImages(t *testing.T) {
	testenv.NeedTools(t, "mkfs.ext4", "sfdisk", "e2fsck", "dumpe2fs")
	b, err := board.Lookup("sabrelite")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := BuildProbe(b, probe); err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	// ELF, 32-bit, ARM (e_machine 40), no program interpreter (static).
	if !bytes.HasPrefix(elf, []byte("\x7fELF\x01")) || elf[18] != 40 || bytes.Contains(elf[:4096], []byte("/lib/ld-")) {
		t.Errorf("probe for %s is not a static 32-bit ARM ELF", b.Name)
	}

	tree := filepath.Join(dir, "root")
	if err := WriteRootTree(tree, probe); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sbin/init", "etc/fstab", "etc/hostname", "proc", "sys", "dev", "run", "mnt", "tmp"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			t.Error(err)
		}
	}
	fs := Ext4{Dir: tree, SizeBytes: 16 << 20, Label: RootLabel, UUID: RootUUID}
	img := filepath.Join(dir, "root.ext4")
	if err := MakeExt4(fs, img); err != nil {
		t.Fatal(err)
	}
	if err := Fsck(img, 0); err != nil {
		t.Error(err)
	}
	out, err := exec.Command("dumpe2fs", "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	for _, want := range []string{"Filesystem UUID:          " + RootUUID, "Filesystem volume name:   " + RootLabel} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dumpe2fs lacks %q", want)
		}
	}
	// The same input gives the same image.
	sum1, _ := diskimage.SHA256File(img)
	img2 := filepath.Join(dir, "root2.ext4")
	if err := MakeExt4(fs, img2); err != nil {
		t.Fatal(err)
	}
	if sum2, _ := diskimage.SHA256File(img2); sum1 != sum2 {
		t.Errorf("mkfs.ext4 twice gave different images: %s %s", sum1, sum2)
	}

	disk := filepath.Join(dir, "disk.img")
	layout, err := MakeMBRDisk(Disk{FS: fs, Partition: 2, PowerOfTwo: true}, disk)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(disk)
	if st.Size() != 32<<20 || layout.SizeBytes != st.Size() {
		t.Errorf("disk size %d (layout %d), want 32 MiB (power of two above 2+16 MiB)", st.Size(), layout.SizeBytes)
	}
	if layout.PartUUID != DiskID+"-02" || layout.StartBytes != 2<<20 {
		t.Errorf("layout = %+v", layout)
	}
	pt, err := ReadPartitionTable(disk)
	if err != nil {
		t.Fatal(err)
	}
	if pt.PartitionTable.Label != "dos" || pt.PartitionTable.ID != "0x"+DiskID || len(pt.PartitionTable.Partitions) != 2 {
		t.Fatalf("partition table = %+v", pt.PartitionTable)
	}
	if p := pt.PartitionTable.Partitions[1]; p.Start*512 != layout.StartBytes || p.Size*512 != 16<<20 {
		t.Errorf("root partition = %+v", p)
	}
	if err := Fsck(disk, layout.StartBytes); err != nil {
		t.Error(err)
	}
	disk2 := filepath.Join(dir, "disk2.img")
	if _, err := MakeMBRDisk(Disk{FS: fs, Partition: 2, PowerOfTwo: true}, disk2); err != nil {
		t.Fatal(err)
	}
	d1, _ := diskimage.SHA256File(disk)
	if d2, _ := diskimage.SHA256File(disk2); d1 != d2 {
		t.Errorf("MakeMBRDisk twice gave different images: %s %s", d1, d2)
	}

	cp := filepath.Join(dir, "copy.img")
	if err := CopySparse(disk, cp); err != nil {
		t.Fatal(err)
	}
	a, _ := diskimage.SHA256File(disk)
	c, _ := diskimage.SHA256File(cp)
	if a != c {
		t.Error("CopySparse changed the content")
	}
}

func TestProbeRuns(t *testing.T) {
	console := "noise\nPROBE BEGIN\nPROBE t=1.5\nPROBE run.cmd=/usr/bin/ofsctl status\nPROBE run.exit=0\nPROBE run.out=base64:cHJvdGVjdGVkCg==\n" +
		"PROBE run.cmd=/nope\nPROBE run.exit=-1\nPROBE run.out=base64:\nPROBE END\n"
	r, err := ParseProbe(console)
	if err != nil {
		t.Fatal(err)
	}
	runs := r.Runs()
	if len(runs) != 2 || runs[0] != (ProgramRun{"/usr/bin/ofsctl status", 0, "protected\n"}) || runs[1].Exit != -1 || runs[1].Cmd != "/nope" {
		t.Errorf("runs = %+v", runs)
	}
}

func TestGuestTime(t *testing.T) {
	for _, tc := range []struct {
		line string
		t    float64
		ok   bool
	}{
		{"[   21.563826] ofsroot: error: x", 21.563826, true},
		{"\r[    0.000000] Linux version", 0, true},
		{"[12345.5] y", 12345.5, true},
		{"ofsroot: no stamp", 0, false},
		{"[  abc] x", 0, false},
		{"[   1.0 no end", 0, false},
		{"[  -1.0] x", 0, false},
	} {
		got, ok := GuestTime(tc.line)
		if got != tc.t || ok != tc.ok {
			t.Errorf("GuestTime(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.t, tc.ok)
		}
	}
}

// TestQEMUArgsFirmwareBoot: a firmware boot passes no kernel, initrd or
// command line, boots the disk first and attaches the others after it.
func TestQEMUArgsFirmwareBoot(t *testing.T) {
	b, _ := board.Lookup("qemu-x86_64")
	k := Kernel{Version: "x", Vmlinuz: "/k/vmlinuz"}
	args, err := QEMUArgs(BootSpec{Board: b, Kernel: k, Initrd: "/i/initrd", Append: []string{"ro"},
		Disk: "/d/disk.img", ExtraDisks: []string{"/d/steps.img"}, FirmwareBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	want := "-device virtio-rng-pci -drive file=/d/disk.img,format=raw,if=none,id=boot -device virtio-blk-pci,drive=boot,bootindex=0" +
		" -drive file=/d/steps.img,format=raw,if=none,id=more0 -device virtio-blk-pci,drive=more0 -no-reboot"
	if !strings.HasSuffix(line, want) {
		t.Errorf("command line %q\nwant it to end with %q", line, want)
	}
	for _, a := range []string{"-kernel", "-initrd", "-append", "-dtb"} {
		if slices.Contains(args, a) {
			t.Errorf("a firmware boot has %s: %q", a, args)
		}
	}
	if _, err := QEMUArgs(BootSpec{Board: b, FirmwareBoot: true}); err == nil {
		t.Error("a firmware boot without a disk: want an error")
	}
	arm, _ := board.Lookup("qemu-arm-virt")
	if _, err := QEMUArgs(BootSpec{Board: arm, Disk: "/d/disk.img", FirmwareBoot: true}); err == nil {
		t.Error("a firmware boot on virtio-mmio: want an error")
	}
	args, err = QEMUArgs(BootSpec{Board: b, Kernel: k, Disk: "/d/root.img", ExtraDisks: []string{"/d/b.img"}})
	if err != nil || !strings.Contains(strings.Join(args, " "), "-drive file=/d/root.img,format=raw,if=virtio -drive file=/d/b.img,format=raw,if=virtio -no-reboot") {
		t.Errorf("more disks with -kernel: %q %v", args, err)
	}
}
