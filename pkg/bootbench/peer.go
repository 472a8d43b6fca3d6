package bootbench

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// BuildMarker compiles the marker for board b into out, static and
// cgo-free.
func BuildMarker(b board.Board, out string) error {
	return bootlab.GoBuild(b, "./pkg/bootbench/marker", out)
}

// BuildNaive builds the naive init (package naive below) for board b
// into out: the yardstick of `--variants naive`.
func BuildNaive(b board.Board, out string) error {
	return bootlab.GoBuild(b, "./pkg/bootbench/naive", out)
}

// MarkerRoot writes the benchmark's root: an ext4 filesystem whose
// /sbin/init is the marker, with the mount points an initramfs moves
// into it, as a bare image (virtio-pci boards: root=/dev/vda) or as
// partition 1 of an MBR disk (the others). It returns the image and the
// root= word.
func MarkerRoot(b board.Board, marker, work string) (image, root string, err error) {
	tree := filepath.Join(work, "marker-root")
	os.RemoveAll(tree)
	for _, d := range []string{"sbin", "etc", "proc", "sys", "dev", "run", "tmp", "mnt", "media"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return "", "", err
		}
	}
	data, err := os.ReadFile(marker)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(tree, "sbin/init"), data, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/fstab"), []byte("# the benchmark's root: nothing to mount\n"), 0o644); err != nil {
		return "", "", err
	}
	fs := bootlab.Ext4{Dir: tree, SizeBytes: 16 << 20, Label: "ofsbench", UUID: bootlab.RootUUID}
	fsImage := filepath.Join(work, "marker-root.ext4")
	if err := bootlab.MakeExt4(fs, fsImage); err != nil {
		return "", "", err
	}
	if b.QEMU.Disk == "virtio-pci" {
		return fsImage, "root=" + b.QEMU.DiskDevice, nil
	}
	disk := filepath.Join(work, "marker-disk.img")
	if _, err := bootlab.MakeMBRDisk(bootlab.Disk{FS: fs, Partition: 1, PowerOfTwo: b.QEMU.DiskSizePowerOfTwo}, disk); err != nil {
		return "", "", err
	}
	return disk, "root=" + b.QEMU.PartitionDevice(1), nil
}

// FloorInitramfs writes the kernel-only floor: an initramfs holding
// only /dev/console and the marker as /init, gzip-compressed. It
// returns the compressed and uncompressed sizes.
func FloorInitramfs(marker, out string) (compressed, unpacked int64, err error) {
	data, err := os.ReadFile(marker)
	if err != nil {
		return 0, 0, err
	}
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(data), 0o755),
	}
	if err := cpio.WriteRecords(w, recs); err != nil {
		return 0, 0, err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return 0, 0, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(gz.Len()), int64(raw.Len()), os.WriteFile(out, gz.Bytes(), 0o644)
}

// PeerSuite is the Debian release the peer's chroot is made from.
const PeerSuite = "bookworm"

// PeerChroot returns a debootstrap chroot (minbase plus initramfs-tools,
// overlayroot and zstd) for the host's architecture, cached in
// cacheDir/debootstrap and reused once complete. Several minutes and
// about 250 MB the first time.
//
// Side effects: runs debootstrap as root; holds cacheDir/.peer.lock
// meanwhile (not the kernel cache's lock, so kernel fetches go on).
func PeerChroot(cacheDir, arch string) (string, error) {
	dir := filepath.Join(cacheDir, "debootstrap", PeerSuite+"-"+arch+"-initramfs-tools")
	done := dir + ".done"
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap is not installed (apt-get install debootstrap, or run scripts/setup-host.sh)")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(cacheDir, ".peer.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.Command("debootstrap", "--variant=minbase", "--arch="+arch,
		"--include=initramfs-tools,overlayroot,zstd", PeerSuite, tmp, bootlab.DebianMirror)
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(string(o), 20))
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, os.WriteFile(done, nil, 0o644)
}

// PeerModules are the MODULES= settings of initramfs-tools the
// benchmark builds.
var PeerModules = []string{"most", "dep"}

// PeerInitramfs builds Debian's initramfs (initramfs-tools with the
// overlayroot hook, its default zstd compression) for kernel k with
// MODULES=modules in the chroot, and copies it to out. The kernel's
// modules are copied into the chroot and depmod is run, as the kernel
// package's postinst would. With MODULES=dep mkinitramfs looks at the
// chroot's root device (the host's); the virtio disk drivers the guest
// needs are listed in /etc/initramfs-tools/modules, as a user building
// for a VM would.
//
// Side effects: writes in the chroot; runs mkinitramfs in it, in a
// private mount namespace with /proc, /sys and /dev mounted.
func PeerInitramfs(chroot string, k bootlab.Kernel, modules, out string) error {
	modDir := filepath.Join(chroot, "lib/modules", k.Version)
	if _, err := os.Stat(filepath.Join(modDir, "modules.dep")); err != nil {
		os.RemoveAll(modDir)
		if err := os.MkdirAll(filepath.Dir(modDir), 0o755); err != nil {
			return err
		}
		if o, err := exec.Command("cp", "-a", filepath.Join(k.Dir, "lib/modules", k.Version), modDir).CombinedOutput(); err != nil {
			return fmt.Errorf("copying the modules into the chroot: %v: %s", err, o)
		}
		if o, err := exec.Command("depmod", "-b", chroot, k.Version).CombinedOutput(); err != nil {
			return fmt.Errorf("depmod -b %s %s: %v: %s", chroot, k.Version, err, o)
		}
	}
	cfg := filepath.Join(chroot, "boot", "config-"+k.Version)
	if _, err := os.Stat(cfg); err != nil {
		data, err := os.ReadFile(filepath.Join(k.Dir, "boot", "config-"+k.Version))
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			return err
		}
	}
	extra := "# the benchmark's guest disk\nvirtio_pci\nvirtio_blk\next4\n"
	if err := os.WriteFile(filepath.Join(chroot, "etc/initramfs-tools/modules"), []byte(extra), 0o644); err != nil {
		return err
	}
	img := "/tmp/initrd-" + modules
	script := fmt.Sprintf(`set -e
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev || true
mkinitramfs -c zstd -d /etc/initramfs-tools -o %s %s
`, img, k.Version)
	conf := filepath.Join(chroot, "etc/initramfs-tools/conf.d/ofsbench")
	if err := os.WriteFile(conf, []byte("MODULES="+modules+"\n"), 0o644); err != nil {
		return err
	}
	// The chroot is bind-mounted on itself so that it is a mount point:
	// MODULES=dep looks "/" up in /proc/mounts.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
		`mount --bind "$1" "$1" && exec chroot "$1" /bin/sh -c "$2"`, "sh", chroot, script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkinitramfs MODULES=%s in %s: %v\n%s", modules, chroot, err, tail(string(o), 20))
	}
	data, err := os.ReadFile(filepath.Join(chroot, img))
	if err != nil {
		return err
	}
	os.Remove(filepath.Join(chroot, img))
	return os.WriteFile(out, data, 0o644)
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// UnpackedSize returns the size of an initramfs once decompressed (gzip,
// zstd or xz, as the file command's tools do it), by piping it through
// the matching decompressor. Early uncompressed cpio parts (microcode)
// are not counted.
func UnpackedSize(path string) (int64, error) {
	head := make([]byte, 6)
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	f.Read(head)
	f.Close()
	var tool string
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		tool = "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		tool = "zstd"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z'}):
		tool = "xz"
	default:
		return 0, fmt.Errorf("%s: not gzip, zstd or xz", path)
	}
	cmd := exec.Command(tool, "-dc", path)
	var n countWriter
	cmd.Stdout = &n
	err = cmd.Run()
	return int64(n), err
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
