package initramfs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/kmod"
)

func mod(name, reason string, deps ...string) kmod.Module {
	return kmod.Module{Name: name, Reason: reason, Info: &kmod.ModInfo{Name: name, Depends: deps}}
}

// TestRootFSOnly: a filesystem module and what only it needs wait for
// the root's superblock; a module another module also needs, or one the
// board asked for, does not.
func TestRootFSOnly(t *testing.T) {
	mods := []kmod.Module{
		mod("crc32c_generic", "requested"),
		mod("virtio_ring", "needed by virtio_blk"),
		mod("virtio_blk", "requested", "virtio_ring"),
		mod("jbd2", "needed by ext4"),
		mod("mbcache", "needed by ext4"),
		mod("crc16", "needed by ext4"),
		mod("ext4", "requested", "jbd2", "mbcache", "crc16"),
		mod("zlib_inflate", "needed by squashfs"),
		mod("squashfs", "requested", "zlib_inflate"),
		mod("shared", "needed by btrfs"),
		mod("btrfs", "requested", "shared"),
		mod("fuse_thing", "requested", "shared"), // not a filesystem module: keeps "shared" always
		mod("overlay", "requested"),
	}
	got := rootFSOnly(mods)
	want := map[string][]string{
		"jbd2": {"ext2", "ext3", "ext4"}, "mbcache": {"ext2", "ext3", "ext4"}, "crc16": {"ext2", "ext3", "ext4"},
		"ext4":         {"ext4", "ext3", "ext2"},
		"zlib_inflate": {"squashfs"}, "squashfs": {"squashfs"},
		"btrfs": {"btrfs"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// TestRootFSLinesAndStrip builds the x86 image: the order file marks the
// ext4 group rootfs= and squashfs too; with StripModules the modules
// carry no signature and no .BTF section, and the image is smaller.
func TestRootFSLinesAndStrip(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	init := standin(t, "amd64")
	build := func(strip bool) (*Result, []byte) {
		out := filepath.Join(t.TempDir(), "initrd")
		res, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: init, Compression: "none", StripModules: strip})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(out)
		return res, data
	}
	plain, data := build(false)
	for _, want := range []string{"\nrootfs=ext2,ext3,ext4 /lib/modules/", "/jbd2.ko\n", "\nrootfs=ext4,ext3,ext2 /lib/modules/", "\nrootfs=squashfs /lib/modules/", "\n/lib/modules/" + plain.KernelVersion + "/kernel/fs/overlayfs/overlay.ko\n"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("modules.order lacks %q", want)
		}
	}
	if !bytes.Contains(data, []byte(kmod.SignatureMagic)) {
		t.Error("the plain image has no signed module")
	}
	stripped, data := build(true)
	if bytes.Contains(data, []byte(kmod.SignatureMagic)) {
		t.Error("a signature is left")
	}
	if stripped.ModuleBytes >= plain.ModuleBytes {
		t.Errorf("module bytes %d stripped, %d not", stripped.ModuleBytes, plain.ModuleBytes)
	}
}
