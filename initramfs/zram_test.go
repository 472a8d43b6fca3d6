package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// TestZram: Options.Zram adds the zram driver and the compressors, each
// tagged so that the init loads it only for a zram layer (a compressor
// only when asked for), and the mke2fs at zram.Mke2fs: a file, or a link
// to /bin/sh when it is the shell. Without it there is neither.
func TestZram(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	init := standin(t, "amd64")
	mkfs := standin(t, "amd64") // any static amd64 program stands in
	build := func(o Options) (*Result, map[string]cpio.Record) {
		t.Helper()
		o.Board, o.Kernel, o.InitBinary, o.Compression = b, dir, init, "none"
		o.Output = filepath.Join(t.TempDir(), "initrd")
		res, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(o.Output)
		byName := map[string]cpio.Record{}
		for _, r := range readArchive(t, data) {
			byName[r.Name] = r
		}
		return res, byName
	}

	plain, files := build(Options{})
	if _, ok := files[strings.TrimPrefix(zram.Mke2fs, "/")]; ok {
		t.Errorf("%s without Zram", zram.Mke2fs)
	}
	for _, m := range plain.ModuleNames {
		if m == "zram" || m == "zsmalloc" || m == "zstd" {
			t.Errorf("module %s without Zram", m)
		}
	}

	if strings.Contains(string(content(t, files["etc/ofsroot/build.json"])), `"zram"`) {
		t.Errorf("build.json says zram without Zram")
	}

	res, files := build(Options{Zram: mkfs})
	if !strings.Contains(string(content(t, files["etc/ofsroot/build.json"])), `"zram": true`) {
		t.Errorf("build.json does not say zram:\n%s", content(t, files["etc/ofsroot/build.json"]))
	}
	r, ok := files[strings.TrimPrefix(zram.Mke2fs, "/")]
	want, _ := os.ReadFile(mkfs)
	if !ok || r.Mode != cpio.S_IFREG|0o755 || !bytes.Equal(content(t, r), want) {
		t.Errorf("%s: present %v mode %o", zram.Mke2fs, ok, r.Mode)
	}
	entries, err := modload.ParseOrder(bytes.NewReader(content(t, files["etc/ofsroot/modules.order"])))
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, e := range entries {
		tags[e.Name()] = strings.Join(e.RootFS, ",")
	}
	for name, tag := range map[string]string{"zram": "zram", "zsmalloc": "zram", "lz4": "zram-lz4", "lz4_compress": "zram-lz4", "lz4hc": "zram-lz4hc", "zstd": "zram-zstd", "zstd_compress": "zram-zstd", "overlay": ""} {
		if got, ok := tags[name]; !ok || got != tag {
			t.Errorf("module %s: in the order file %v, tagged %q, want %q", name, ok, got, tag)
		}
	}
	t.Logf("zram adds %d bytes of modules (%d -> %d), %d of mke2fs", res.ModuleBytes-plain.ModuleBytes, plain.ModuleBytes, res.ModuleBytes, len(want))

	_, files = build(Options{Zram: mkfs, Shell: mkfs})
	if r := files[strings.TrimPrefix(zram.Mke2fs, "/")]; r.Mode&cpio.S_IFMT != cpio.S_IFLNK || string(content(t, r)) != "/bin/sh" {
		t.Errorf("%s with the shell's file: mode %o %q, want a link to /bin/sh", zram.Mke2fs, r.Mode, content(t, r))
	}

	if _, err := Build(Options{Board: b, Kernel: dir, InitBinary: init, Output: filepath.Join(t.TempDir(), "x"), Zram: standin(t, "arm")}); err == nil || !strings.Contains(err.Error(), "mke2fs") {
		t.Errorf("an ARM mke2fs for an x86 board: %v", err)
	}
}
