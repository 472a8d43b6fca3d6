package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/debcache/debcachetest"
	"github.com/ofsroot/ofsroot/pkg/uimage"
)

func runBootfilesCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := program.Main(append([]string{"bootfiles"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestBootfilesUsage(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	out := filepath.Join(tmp, "out")
	for _, tc := range []struct {
		name   string
		args   []string
		env    string
		code   int
		stderr []string
	}{
		{"help", []string{"--help"}, "", 0, []string{"Usage: ofsroot bootfiles --board NAME --kernel DEB|DIR --output DIR", "-root SPEC", "nitrogen6_max, nitrogen6x, sabrelite"}},
		{"help: protect-by-default", []string{"--help"}, "", 0, []string{"-protect-by-default", "an unset overlayfs means protected"}},
		{"nothing", nil, "", 2, []string{"missing --board, --kernel, --output"}},
		{"arguments", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out, "x"}, "", 2, []string{`unexpected arguments ["x"]`}},
		{"unknown board", []string{"--board", "nope", "--kernel", empty, "--output", out}, "", 2, []string{`no board "nope"`}},
		{"board without U-Boot", []string{"--board", "qemu-x86_64", "--kernel", empty, "--output", out}, "", 2, []string{"does not boot with U-Boot", "nitrogen6x"}},
		{"bad compression", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out, "--compress", "lzo"}, "", 2, []string{`--compress "lzo"`}},
		{"bad root", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out, "--root", `a";reset`}, "", 2, []string{"may not contain"}},
		{"bad append", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out, "--append", "ok ${bad}"}, "", 2, []string{"may not contain"}},
		{"missing kernel", []string{"--board", "nitrogen6x", "--kernel", filepath.Join(tmp, "nope.deb"), "--output", out}, "", 2, []string{"no such file"}},
		{"bad epoch", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out}, "now", 2, []string{`SOURCE_DATE_EPOCH="now"`}},
		{"kernel folder without a kernel", []string{"--board", "nitrogen6x", "--kernel", empty, "--output", out}, "", 1, []string{"no boot/vmlinuz-VERSION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			code, stdout, stderr := runBootfilesCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "boot.scr")); !os.IsNotExist(err) {
		t.Error("a failed run wrote boot.scr")
	}
}

// armmpKernel is the current Debian armmp kernel, fetched into the
// shared cache: as a .deb and as the folder dpkg -x made of it.
func armmpKernel(t *testing.T) (deb, dir string) {
	t.Helper()
	k := debcachetest.Kernel(t, "armmp")
	return k.Deb, k.Dir
}

// TestBootfiles builds the nitrogen6x boot partition from the cached
// Debian kernel, as a folder and as a .deb, with a stand-in init: the
// two give the same bytes, and boot.scr and uInitrd are what mkimage
// makes of the same inputs.
func TestBootfiles(t *testing.T) {
	deb, kdir := armmpKernel(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "init.go")
	os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644)
	initBin := filepath.Join(tmp, "init")
	cmd := exec.Command("go", "build", "-o", initBin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=7")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a stand-in init: %v\n%s", err, out)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1704067200")
	files := []string{"boot.cmd", "boot.scr", "uInitrd", "zImage", "imx6q-nitrogen6x.dtb"}
	var outs []string
	for i, kernel := range []string{kdir, deb} {
		out := filepath.Join(tmp, "out"+string(rune('a'+i)))
		fwEnv := filepath.Join(tmp, "fw_env.config")
		code, stdout, stderr := runBootfilesCLI("--board", "nitrogen6x", "--kernel", kernel, "--output", out, "--init", initBin,
			"--root", "LABEL=rootfs", "--append", "ro quiet", "--fw-env-config", fwEnv)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, want := range []string{"wrote the boot partition of nitrogen6x", "uInitrd", "spi_imx spi_nor", "root=     LABEL=rootfs",
			"zImage at 0x12000000, uInitrd at 0x13000000, imx6q-nitrogen6x.dtb at 0x18000000", "setenv overlayfs yes; setenv ofs-size 20; saveenv"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
		if cfg, _ := os.ReadFile(fwEnv); !strings.Contains(string(cfg), "/dev/mtd0 0xC0000 0x2000 0x1000") {
			t.Errorf("fw_env.config:\n%s", cfg)
		}
		entries, _ := os.ReadDir(out)
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != "boot.cmd boot.scr imx6q-nitrogen6x.dtb uInitrd zImage" {
			t.Errorf("%s holds %q (no leftovers wanted)", out, got)
		}
		outs = append(outs, out)
	}
	for _, f := range files {
		a, _ := os.ReadFile(filepath.Join(outs[0], f))
		b, _ := os.ReadFile(filepath.Join(outs[1], f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: the folder and the .deb give different bytes (%d, %d)", f, len(a), len(b))
		}
	}
	out := outs[0]
	cmdText, _ := os.ReadFile(filepath.Join(out, "boot.cmd"))
	if !strings.Contains(string(cmdText), `ofs_root="LABEL=rootfs"`) || !strings.Contains(string(cmdText), "rootwait ro quiet") {
		t.Errorf("boot.cmd does not carry --root and --append")
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	k1, _ := os.ReadFile(vmlinuz[0])
	k2, _ := os.ReadFile(filepath.Join(out, "zImage"))
	if !bytes.Equal(k1, k2) {
		t.Error("zImage is not the package's kernel")
	}

	testenv.NeedTools(t, "mkimage")
	rd, _ := os.ReadFile(filepath.Join(out, "uInitrd"))
	img, err := uimage.Decode(rd)
	if err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(tmp, "initramfs")
	os.WriteFile(payload, img.Data, 0o644)
	for _, tc := range []struct {
		file string
		args []string
		list string
	}{
		{"boot.scr", []string{"-T", "script", "-C", "none", "-n", "ofsroot nitrogen6x", "-d", filepath.Join(out, "boot.cmd")}, "ARM Linux Script (uncompressed)"},
		{"uInitrd", []string{"-T", "ramdisk", "-C", "gzip", "-n", "ofsroot initramfs", "-d", payload}, "ARM Linux RAMDisk Image (gzip compressed)"},
	} {
		ref := filepath.Join(tmp, "ref-"+tc.file)
		c := exec.Command("mkimage", append(append([]string{"-A", "arm", "-O", "linux", "-a", "0", "-e", "0"}, tc.args...), ref)...)
		if o, err := c.CombinedOutput(); err != nil {
			t.Fatalf("mkimage: %v\n%s", err, o)
		}
		a, _ := os.ReadFile(filepath.Join(out, tc.file))
		b, _ := os.ReadFile(ref)
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from mkimage's with the same inputs and SOURCE_DATE_EPOCH", tc.file)
		}
		l, err := exec.Command("mkimage", "-l", filepath.Join(out, tc.file)).CombinedOutput()
		if err != nil || !strings.Contains(string(l), tc.list) || !strings.Contains(string(l), "Created:      Mon Jan  1 00:00:00 2024") {
			t.Errorf("mkimage -l %s: %v\n%s", tc.file, err, l)
		}
	}
}
