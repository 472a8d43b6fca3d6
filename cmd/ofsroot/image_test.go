package main

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := program.Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestImageInstallFlashUsage(t *testing.T) {
	tmp := t.TempDir()
	img := filepath.Join(tmp, "disk.img")
	os.WriteFile(img, make([]byte, 4096), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"image help", []string{"image", "--help"}, 0, []string{"Usage: ofsroot image --board NAME --kernel DEB|DIR --rootfs DIR|TAR --output FILE", "-data-size SIZE", "-boot-file SRC[:NAME]", "at least 32 MiB"}},
		{"image nothing", []string{"image"}, 2, []string{"missing --board, --kernel, --rootfs, --output"}},
		{"image bad size", []string{"image", "--data-size", "1000"}, 2, []string{"not a multiple of 1 MiB"}},
		{"image bad size word", []string{"image", "--root-size", "big"}, 2, []string{`size "big"`}},
		{"image root type", []string{"image", "--board", "sabrelite", "--kernel", tmp, "--rootfs", tmp, "--output", img, "--root-type", "btrfs"}, 2, []string{`--root-type "btrfs"`}},
		{"image table", []string{"image", "--board", "sabrelite", "--kernel", tmp, "--rootfs", tmp, "--output", img, "--table", "apm"}, 2, []string{`--table "apm"`}},
		{"image board", []string{"image", "--board", "nope", "--kernel", tmp, "--rootfs", tmp, "--output", img}, 2, []string{`no board "nope"`}},
		{"image missing rootfs", []string{"image", "--board", "sabrelite", "--kernel", tmp, "--rootfs", filepath.Join(tmp, "none"), "--output", img}, 2, []string{"--rootfs", "no such file"}},
		{"image extra", []string{"image", "extra"}, 2, []string{`unexpected arguments ["extra"]`}},
		{"image own boot.scr on U-Boot", []string{"image", "--board", "sabrelite", "--kernel", tmp, "--rootfs", tmp, "--output", img, "--boot-file", img + ":boot.scr"}, 2, []string{"the image writes its own boot.scr for U-Boot", "ofsroot image --extlinux"}},
		{"image help names --extlinux", []string{"image", "--help"}, 0, []string{"-extlinux", "distro boot", "ofs-once"}},
		{"install help", []string{"install", "--help"}, 0, []string{"Usage: ofsroot install --board NAME", "TARGET"}},
		{"install no target", []string{"install", "--board", "sabrelite"}, 2, []string{"want one TARGET"}},
		{"install no board", []string{"install", tmp}, 2, []string{"missing --board"}},
		{"image output folder missing", []string{"image", "--board", "sabrelite", "--kernel", tmp, "--rootfs", tmp, "--output", filepath.Join(tmp, "no", "sd.img")}, 2, []string{"--output", "its folder", "no such file"}},
		{"initramfs output folder missing", []string{"initramfs", "--board", "sabrelite", "--kernel", tmp, "--output", filepath.Join(tmp, "no", "initrd")}, 2, []string{"--output", "its folder", "no such file"}},
		{"install missing target", []string{"install", "--board", "sabrelite", filepath.Join(tmp, "none")}, 2, []string{"TARGET", "no such file"}},
		{"install not a root", []string{"install", "--board", "sabrelite", "--initramfs", img, tmp}, 1, []string{"has no etc/"}},
		{"flash help", []string{"flash", "--help"}, 0, []string{"Usage: ofsroot flash IMAGE DEVICE", "-to-file", "-yes"}},
		{"flash one arg", []string{"flash", img}, 2, []string{"want IMAGE and DEVICE"}},
		{"flash missing image", []string{"flash", filepath.Join(tmp, "none.img"), "/dev/null"}, 2, []string{"image", "no such file"}},
		{"flash regular file", []string{"flash", img, filepath.Join(tmp, "x"), "--yes"}, 1, []string{"no such file"}},
		{"flash file without --to-file", []string{"flash", img, img + ".copy", "--yes"}, 1, []string{"refusing to write"}},
		{"flash char device", []string{"flash", "--yes", img, "/dev/null"}, 1, []string{"refusing to write /dev/null: it is a character device, not a block device; pass --to-file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "flash file without --to-file" {
				os.WriteFile(img+".copy", nil, 0o644)
			}
			code, stdout, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tc.code != 0 && stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
}

// TestFlashCLIToFile: flags after the arguments, a gzip image, plain
// progress lines when not on a terminal.
func TestFlashCLIToFile(t *testing.T) {
	tmp := t.TempDir()
	img := filepath.Join(tmp, "disk.img")
	data := make([]byte, 2<<20)
	rand.Read(data[:1<<20])
	os.WriteFile(img, data, 0o644)
	testenv.NeedTools(t, "gzip")
	gz, err := exec.Command("gzip", "-c", img).Output()
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	os.WriteFile(img+".gz", gz, 0o644)
	out := filepath.Join(tmp, "out.img")
	code, stdout, stderr := runCLI("flash", img+".gz", out, "--to-file")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, data) {
		t.Error("the file differs from the image")
	}
	if !strings.Contains(stdout, "2.0 MiB (gzip image), read back and verified") {
		t.Errorf("stdout: %s", stdout)
	}
	for _, want := range []string{"checking gzip image", "writing " + out + ": 2.0 MiB", "100% 2.0 MiB of 2.0 MiB", "syncing", "verifying " + out} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Error("not a terminal: no carriage returns")
	}
}

// TestInstallCLIFolder: a mounted root folder with Debian's names; the
// report lists each change and what the user still has to do.
func TestInstallCLIFolder(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{
		"etc/fstab":                                "",
		"boot/vmlinuz-6.1.0-50-amd64":              "k",
		"boot/initrd.img-6.1.0-50-amd64":           "old",
		"boot/boot.scr":                            "script",
		"lib/modules/6.1.0-50-amd64/modules.order": "",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	initrd := filepath.Join(t.TempDir(), "initrd")
	os.WriteFile(initrd, []byte("new"), 0o644)
	code, stdout, stderr := runCLI("install", root, "--board", "qemu-x86_64", "--initramfs", initrd, "--cmdline", "overlayfs=yes ofs-size=30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"installed ofsroot for qemu-x86_64 (kernel 6.1.0-50-amd64) into " + root,
		"replaced /boot/initrd.img-6.1.0-50-amd64: ofsroot initramfs for qemu-x86_64, kernel 6.1.0-50-amd64 (the old one is kept as initrd.img-6.1.0-50-amd64.ofsroot-old)",
		"nothing else was changed",
		`to do: /boot/boot.scr (a U-Boot script) is not edited: make its bootargs carry overlayfs=yes ofs-size=30`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "boot/initrd.img-6.1.0-50-amd64.ofsroot-old")); string(b) != "old" {
		t.Errorf("backup holds %q", b)
	}
}
