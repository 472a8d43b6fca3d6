package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

// TestFlashKernelSnippet runs the package's flash-kernel snippet
// (/usr/share/flash-kernel/ubootenv.d/ofsroot, dist/flash-kernel) in the
// board's real U-Boot under QEMU, as flash-kernel's boot script runs it
// at @@UBOOT_ENV_EXTRA@@ (after bootargs is set), from a script image on
// the USB stick:
//   - nothing set: bootargs gain overlayfs=yes (the package's default);
//   - overlayfs=yes, ofs-size=20, ofs-once=1 saved: one maintenance boot
//     (overlayfs=no ofs-size=20), ofs-once cleared and saved first;
//   - the next run: overlayfs=yes ofs-size=20 again;
//   - ofs-reset=1 saved: ofs-reset=1 once, cleared and saved first;
//   - overlayfs=no: overlayfs=no.
//
// The environment U-Boot saved is read back on the host.
func TestFlashKernelSnippet(t *testing.T) {
	t.Parallel()
	b, err := board.Lookup(ubootBoard)
	if err != nil {
		t.Fatal(err)
	}
	needHost(t, b)
	for _, tool := range []string{"mkimage", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run scripts/setup-host.sh", tool)
		}
	}
	cache, err := kernelCache()
	if err != nil {
		t.Fatal(err)
	}
	ub, err := bootlab.FetchUBoot(cache, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(runDir, "flash-kernel")
	part := filepath.Join(dir, "boot")
	os.MkdirAll(part, 0o755)
	bin := filepath.Join(dir, "u-boot.bin")
	if err := bootlab.StripImage(ub.Image, int64(b.UBoot.QEMU.Skip), bin); err != nil {
		t.Fatal(err)
	}
	mod, err := bootlab.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := os.ReadFile(filepath.Join(mod, "dist/flash-kernel/ofsroot"))
	if err != nil {
		t.Fatal(err)
	}
	// flash-kernel's bootscr.uboot-generic sets bootargs, then the snippets.
	script := "setenv bootargs \"root=/dev/mmcblk0p1 ro\"\n" + string(snippet) + "echo \"ofsroot-test bootargs=[${bootargs}]\"\n"
	src := filepath.Join(dir, "snippet.cmd")
	os.WriteFile(src, []byte(script), 0o644)
	sh(t, "mkimage", "-q", "-A", "arm", "-O", "linux", "-T", "script", "-C", "none", "-d", src, filepath.Join(part, "snippet.scr"))
	stick := filepath.Join(dir, "usb.img")
	if err := bootlab.MakeBootStick(part, stick, 0); err != nil {
		t.Fatal(err)
	}
	spi := filepath.Join(dir, "spi.img")
	if err := bootlab.MakeErasedFlash(spi, 2<<20); err != nil {
		t.Fatal(err)
	}

	bootSem <- struct{}{}
	defer func() { <-bootSem }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logPath := filepath.Join(dir, "console.log")
	sess, err := bootlab.StartUBoot(ctx, bootlab.UBootSpec{Board: b, Binary: bin, SPI: spi, Stick: stick, Log: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log: %s\nconsole tail:\n%s", logPath, tail(sess.Text(), 40))
		}
	})
	const wait = 3 * time.Minute
	if err := sess.Interrupt(wait); err != nil {
		t.Fatalf("U-Boot prompt: %v", err)
	}
	run := func(cmd string) string {
		t.Helper()
		out, err := sess.Run(cmd, wait)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
	run("usb start")
	load := "load usb 0:1 " + b.UBoot.KernelAddr.String() + " snippet.scr && source " + b.UBoot.KernelAddr.String()
	source := func() string {
		t.Helper()
		out := run(load)
		i := strings.Index(out, "ofsroot-test bootargs=[")
		if i < 0 {
			t.Fatalf("the script did not run:\n%s", out)
		}
		args := out[i+len("ofsroot-test bootargs=["):]
		return args[:strings.IndexByte(args, ']')]
	}
	if got := source(); got != "root=/dev/mmcblk0p1 ro overlayfs=yes" {
		t.Errorf("nothing set: bootargs %q", got)
	}
	run("setenv overlayfs yes; setenv ofs-size 20; setenv ofs-once 1; saveenv")
	out := run(load)
	if !strings.Contains(out, "ofsroot: ofs-once: a maintenance boot") || !strings.Contains(out, "ofsroot-test bootargs=[root=/dev/mmcblk0p1 ro overlayfs=no ofs-size=20]") {
		t.Errorf("ofs-once: %s", out)
	}
	if out := run("printenv ofs-once"); !strings.Contains(out, `"ofs-once" not defined`) {
		t.Errorf("ofs-once after the maintenance run: %q", out)
	}
	if got := source(); got != "root=/dev/mmcblk0p1 ro overlayfs=yes ofs-size=20" {
		t.Errorf("after the maintenance run: bootargs %q", got)
	}
	// ofs-reset (ofsctl upper reset): ofs-reset=1 this once, the flag
	// cleared and saved first.
	run("setenv ofs-reset 1; saveenv")
	out = run(load)
	if !strings.Contains(out, "ofsroot: ofs-reset: this boot empties the persistent layer") || !strings.Contains(out, "ofsroot-test bootargs=[root=/dev/mmcblk0p1 ro overlayfs=yes ofs-size=20 ofs-reset=1]") {
		t.Errorf("ofs-reset: %s", out)
	}
	if got := source(); got != "root=/dev/mmcblk0p1 ro overlayfs=yes ofs-size=20" {
		t.Errorf("after the reset run: bootargs %q", got)
	}
	run("setenv overlayfs no")
	if got := source(); got != "root=/dev/mmcblk0p1 ro overlayfs=no ofs-size=20" {
		t.Errorf("overlayfs=no: bootargs %q", got)
	}
	sess.Close()

	// What U-Boot saved (with ofs-once already cleared), read on the host.
	cfgPath := filepath.Join(dir, "fw_env.config")
	os.WriteFile(cfgPath, []byte(spi+" 0xC0000 0x2000 0x1000\n"), 0o644)
	cfg, err := ubootenv.ReadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ubootenv.Open(cfg, ubootenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := st.Env()
	if v, _ := e.Get("overlayfs"); v != "yes" || !st.Valid() {
		t.Errorf("saved environment: overlayfs=%q (valid %v)", v, st.Valid())
	}
	if _, ok := e.Get("ofs-once"); ok {
		t.Error("the saved environment still has ofs-once: every boot would be a maintenance boot")
	}
	if _, ok := e.Get("ofs-reset"); ok {
		t.Error("the saved environment still has ofs-reset: every boot would empty the layer")
	}
}
