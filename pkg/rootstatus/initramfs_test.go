package rootstatus

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/ofsroot/ofsroot/initramfs"
)

func TestBuildInfoName(t *testing.T) {
	if "/"+buildInfoName != initramfs.BuildInfoFile {
		t.Errorf("rootstatus looks for %s, the builder writes %s", buildInfoName, initramfs.BuildInfoFile)
	}
}

// archive is a newc archive holding files (name -> content), compressed
// with comp ("gzip", "xz" or "").
func archive(t *testing.T, comp string, files map[string]string) []byte {
	t.Helper()
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	for _, n := range []string{"dev", "etc", "etc/ofsroot", "init", buildInfoName} {
		if n == "dev" || n == "etc" || n == "etc/ofsroot" {
			w.WriteRecord(cpio.Directory(n, 0o755))
			continue
		}
		if c, ok := files[n]; ok {
			w.WriteRecord(cpio.StaticRecord([]byte(c), cpio.Info{Name: n, Mode: cpio.S_IFREG | 0o644}))
		}
	}
	cpio.WriteTrailer(w)
	var out bytes.Buffer
	switch comp {
	case "gzip":
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
	case "xz":
		xw, _ := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&out)
		xw.Write(raw.Bytes())
		xw.Close()
	default:
		return raw.Bytes()
	}
	return out.Bytes()
}

func TestInstalledKernels(t *testing.T) {
	boot := t.TempDir()
	put := func(name string, data []byte) { os.WriteFile(filepath.Join(boot, name), data, 0o644) }
	for _, v := range []string{"6.1.0-1", "6.1.0-2", "6.1.0-3", "6.1.0-4", "6.1.0-5"} {
		put("vmlinuz-"+v, []byte("kernel"))
	}
	put("initrd.img-6.1.0-1", archive(t, "gzip", map[string]string{"init": "x", buildInfoName: `{"kernel_version":"6.1.0-1","ofsroot_version":"1.0.0"}`}))
	put("initrd.img-6.1.0-2", archive(t, "gzip", map[string]string{"init": "#!/bin/sh\n"})) // initramfs-tools'
	// 6.1.0-3: none
	put("initrd.img-6.1.0-4", archive(t, "xz", map[string]string{buildInfoName: `{"kernel_version":"6.1.0-1","ofsroot_version":"0.9"}`}))
	put("initrd.img-6.1.0-5", archive(t, "", map[string]string{buildInfoName: `{"kernel_version":"6.1.0-5","ofsroot_version":"1.0.0","shell_sha256":"ab12","zram":true}`}))
	got := InstalledKernels(boot)
	want := []struct{ kernel, problem, version string }{
		{"6.1.0-1", "", "1.0.0"},
		{"6.1.0-2", "not made by ofsroot", ""},
		{"6.1.0-3", "no initramfs", ""},
		{"6.1.0-4", "made for kernel 6.1.0-1", "0.9"},
		{"6.1.0-5", "", "1.0.0"},
	}
	if len(got) != len(want) {
		t.Fatalf("kernels %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Kernel != w.kernel || !strings.HasPrefix(g.Problem, w.problem) || (w.problem == "") != (g.Problem == "") || g.OfsrootVersion != w.version {
			t.Errorf("%s: %+v, want problem %q version %q", w.kernel, g, w.problem, w.version)
		}
	}
	mi := "22 1 0:20 / / rw,relatime - ext4 /dev/vda rw\n"
	r, err := Evaluate(Inputs{Mountinfo: strings.NewReader(mi), Kernels: got})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 3 || !strings.Contains(r.Warnings[0], "kernel 6.1.0-2") || !strings.Contains(r.Warnings[0], "update-initramfs 6.1.0-2") {
		t.Errorf("warnings %q", r.Warnings)
	}
	var text bytes.Buffer
	r.Text(&text)
	if !strings.Contains(text.String(), "installed:  kernel 6.1.0-1, "+filepath.Join(boot, "initrd.img-6.1.0-1")+" by ofsroot 1.0.0") {
		t.Errorf("text:\n%s", text.String())
	}
	// What an initramfs carries beyond the init and its modules.
	if got[0].RescueShell || got[0].Zram || !got[4].RescueShell || !got[4].Zram {
		t.Errorf("rescue shell and zram: %+v, %+v", got[0], got[4])
	}
	if !strings.Contains(text.String(), "initrd.img-6.1.0-1 by ofsroot 1.0.0\n") ||
		!strings.Contains(text.String(), "by ofsroot 1.0.0 (with a rescue shell and the zram layer's modules and mke2fs)\n") {
		t.Errorf("text:\n%s", text.String())
	}
	// Garbage is an error for that kernel, not a crash.
	put("initrd.img-6.1.0-1", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{0xff}, 100)...))
	if k := InstalledKernels(boot)[0]; k.Problem == "" {
		t.Errorf("a corrupt initramfs: %+v", k)
	}
}
