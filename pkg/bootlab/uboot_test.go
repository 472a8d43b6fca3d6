package bootlab

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/board"
)

func TestUBootArgs(t *testing.T) {
	b, err := board.Lookup("nitrogen6x")
	if err != nil {
		t.Fatal(err)
	}
	args, err := UBootArgs(UBootSpec{Board: b, Binary: "/u/ub.bin", SPI: "/u/spi.img", Stick: "/u/usb.img", SD: "/u/sd.img"}, "/s/console")
	if err != nil {
		t.Fatal(err)
	}
	line := " " + strings.Join(args, " ") + " "
	for _, want := range []string{
		" -accel tcg -M sabrelite ", " -m 1024 ", " -smp 1 ",
		" -serial null -chardev socket,id=con,path=/s/console,server=on,wait=on -serial chardev:con ",
		" -device loader,file=/u/ub.bin,addr=0x17800000,force-raw=on ",
		" -device loader,addr=0x17800000,cpu-num=0 ",
		" -drive file=/u/spi.img,format=raw,if=mtd ",
		" -drive file=/u/usb.img,format=raw,if=none,id=stick -device usb-storage,drive=stick,bus=usb-bus.1 ",
		" -drive file=/u/sd.img,format=raw,if=none,id=sd -device sd-card,drive=sd ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
	for _, never := range []string{"-no-reboot", "-kernel", "-enable-kvm", "-nographic"} {
		if slices.Contains(args, never) {
			t.Errorf("command line has %s: %s", never, line)
		}
	}
	if args[0] != "qemu-system-arm" {
		t.Errorf("binary %q", args[0])
	}
	if _, err := UBootArgs(UBootSpec{Board: b, Binary: "/a,b"}, "/s"); err == nil {
		t.Error("a comma in a path: want an error")
	}
	max, _ := board.Lookup("nitrogen6_max")
	if _, err := UBootArgs(UBootSpec{Board: max}, "/s"); err == nil {
		t.Error("nitrogen6_max has no U-Boot QEMU can start: want an error")
	}
	x86, _ := board.Lookup("qemu-x86_64")
	if _, err := UBootArgs(UBootSpec{Board: x86}, "/s"); err == nil {
		t.Error("a board without U-Boot: want an error")
	}
}

func TestStripAndFlash(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "u-boot-dtb.imx")
	os.WriteFile(img, append(bytes.Repeat([]byte{1}, 0xC00), "U-Boot"...), 0o644)
	out := filepath.Join(dir, "ub.bin")
	if err := StripImage(img, 0xC00, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "U-Boot" {
		t.Errorf("stripped image %q", b)
	}
	if err := StripImage(out, 0xC00, filepath.Join(dir, "x")); err == nil {
		t.Error("an image shorter than the skip: want an error")
	}
	spi := filepath.Join(dir, "spi.img")
	if err := MakeErasedFlash(spi, 2<<20); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(spi); len(b) != 2<<20 || !bytes.Equal(b, bytes.Repeat([]byte{0xff}, 2<<20)) {
		t.Error("the flash image is not 2 MiB of 0xff")
	}
}

// TestMakeBootStick makes a stick and reads it back with sfdisk and
// mtools.
func TestMakeBootStick(t *testing.T) {
	testenv.NeedTools(t, "sfdisk", "mkfs.vfat", "mcopy", "mtype")
	dir := t.TempDir()
	files := filepath.Join(dir, "boot")
	os.Mkdir(files, 0o755)
	os.WriteFile(filepath.Join(files, "boot.scr"), []byte("script"), 0o644)
	os.WriteFile(filepath.Join(files, "zImage"), bytes.Repeat([]byte("k"), 3<<20), 0o644)
	// flash-kernel's layout: the device tree in dtbs/VERSION/.
	os.MkdirAll(filepath.Join(files, "dtbs", "6.1.0-50-armmp"), 0o755)
	os.WriteFile(filepath.Join(files, "dtbs", "6.1.0-50-armmp", "board.dtb"), []byte("dtb"), 0o644)
	stick := filepath.Join(dir, "usb.img")
	if err := MakeBootStick(files, stick, 0); err != nil {
		t.Fatal(err)
	}
	pt, err := ReadPartitionTable(stick)
	if err != nil {
		t.Fatal(err)
	}
	p := pt.PartitionTable.Partitions
	if pt.PartitionTable.ID != "0x"+StickDiskID || len(p) != 1 || p[0].Start != 2048 || p[0].Type != "c" {
		t.Errorf("partition table %+v", pt.PartitionTable)
	}
	out, err := exec.Command("mtype", "-i", stick+"@@1048576", "::/boot.scr").CombinedOutput()
	if err != nil || string(out) != "script" {
		t.Errorf("mtype boot.scr: %v %q", err, out)
	}
	out, err = exec.Command("mtype", "-i", stick+"@@1048576", "::/dtbs/6.1.0-50-armmp/board.dtb").CombinedOutput()
	if err != nil || string(out) != "dtb" {
		t.Errorf("mtype dtbs/6.1.0-50-armmp/board.dtb: %v %q", err, out)
	}
	if err := MakeBootStick(files, filepath.Join(dir, "small.img"), 2); err == nil {
		t.Error("a stick too small for the files: want an error")
	}
}

func TestWriteUBootRootTree(t *testing.T) {
	dir := t.TempDir()
	initBin, ofsctl := filepath.Join(dir, "probe"), filepath.Join(dir, "ofsctl")
	os.WriteFile(initBin, []byte("probe"), 0o755)
	os.WriteFile(ofsctl, []byte("ofsctl"), 0o755)
	tree := filepath.Join(dir, "root")
	if err := WriteUBootRootTree(tree, initBin, ofsctl, "/dev/mtd0 0xC0000 0x2000 0x1000\n"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"sbin/init": "probe", "usr/bin/ofsctl": "ofsctl", "etc/fw_env.config": "/dev/mtd0 0xC0000 0x2000 0x1000\n"} {
		b, err := os.ReadFile(filepath.Join(tree, p))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
		fi, _ := os.Stat(filepath.Join(tree, p))
		if fi.ModTime().Unix() != SourceDateEpoch {
			t.Errorf("%s stamped %v", p, fi.ModTime())
		}
	}
	if fi, _ := os.Stat(filepath.Join(tree, "usr/bin/ofsctl")); fi.Mode().Perm() != 0o755 {
		t.Errorf("ofsctl mode %v", fi.Mode())
	}
}

// fakeSession is a session whose console is one end of a pipe; the
// test plays U-Boot on the other.
func fakeSession(t *testing.T) (*UBootSession, net.Conn) {
	t.Helper()
	ours, theirs := net.Pipe()
	us := &UBootSession{conn: ours, done: make(chan error, 1), wake: make(chan struct{}, 1)}
	logf, err := os.Create(filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	go us.read(logf, nil, &lockedBuffer{})
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return us, theirs
}

func TestSessionExpect(t *testing.T) {
	us, console := fakeSession(t)
	go console.Write([]byte("U-Boot 2023.01\r\nHit any key to stop autoboot:  3 "))
	// U-Boot: answer the key with the prompt, a command with its echo,
	// output and the prompt again.
	go func() {
		buf := make([]byte, 256)
		n, _ := console.Read(buf)
		if string(buf[:n]) != " " {
			console.Write([]byte("unexpected key " + string(buf[:n])))
		}
		console.Write([]byte("\r\n=> "))
		n, _ = console.Read(buf)
		cmd := strings.TrimSuffix(string(buf[:n]), "\r")
		console.Write([]byte(cmd + "\r\n## Error: \"ofs-once\" not defined\r\n=> "))
	}()
	if err := us.Interrupt(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := us.Run("printenv ofs-once", 5*time.Second)
	if err != nil || out != "## Error: \"ofs-once\" not defined\n" {
		t.Errorf("Run = %q, %v", out, err)
	}

	// A boot: the earliest of several patterns wins, and BootText has
	// what came since MarkBoot.
	us.MarkBoot()
	go console.Write([]byte("Starting kernel ...\nPROBE BEGIN\nPROBE pid=1\nPROBE t=2.5\nPROBE END\nreboot: Restarting system\nHit any key"))
	i, before, err := us.Expect(5*time.Second, "PROBE END", "Starting kernel")
	if err != nil || i != 1 || before != "" {
		t.Errorf("Expect = %d %q %v; want the earlier pattern", i, before, err)
	}
	r, text, err := us.WaitProbe(5 * time.Second)
	if err != nil || r.PID != 1 || r.T != 2.5 || !strings.HasPrefix(text, "Starting kernel") || strings.Contains(text, "reboot:") {
		t.Errorf("WaitProbe = %+v, %q, %v", r, text, err)
	}
	if _, _, err := us.Expect(50*time.Millisecond, "never"); err == nil || !strings.Contains(err.Error(), "within") {
		t.Errorf("timeout: %v", err)
	}
	if !strings.Contains(us.Text(), "U-Boot 2023.01") {
		t.Error("Text lost the start")
	}
	console.Close()
	if _, _, err := us.Expect(5*time.Second, "never"); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("after the console closed: %v", err)
	}
}
