package imageinstall

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/flash"
)

// Install installs into o.Target: a folder is taken as the mounted root
// (the kernel is looked for in ROOT/boot); an image file or a block
// device has its partitions read (blockdev.Partitions), each ext2/3/4 or
// vfat one mounted read-only to find the root (etc/ and lib/modules or
// sbin/init) and the boot files (a partition whose top holds a kernel,
// else the root's /boot); only the one holding the boot files is then
// mounted read-write. A block device is refused as flash refuses it when
// mounted or holding the running system.
//
// Side effects: mount(8) and umount(8) of loop mounts under a temporary
// folder (loop devices freed on unmount); the writes of Into. Mounting
// an ext4 read-write updates its superblock's mount time and count, as
// any mount does.
func Install(o Options) (*Result, error) {
	st, err := os.Stat(o.Target)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", o.Target, err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(o.Target, "etc")); err != nil {
			return nil, fmt.Errorf("target %s has no etc/: give the folder where the target's root is mounted", o.Target)
		}
		return Into(Places{Root: o.Target, Boot: filepath.Join(o.Target, "boot"), BootShown: "/boot"}, o)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("installing into %s mounts its partitions: run as root, or mount its root (and boot partition) yourself and give the root folder", o.Target)
	}
	var sys unix.Stat_t
	if err := unix.Stat(o.Target, &sys); err != nil {
		return nil, err
	}
	if sys.Mode&unix.S_IFMT == unix.S_IFBLK {
		dev := fmt.Sprintf("%d:%d", unix.Major(sys.Rdev), unix.Minor(sys.Rdev))
		if _, err := flash.Host.CheckDisk(o.Target, dev); err != nil {
			return nil, fmt.Errorf("%w (a mounted system: give its root folder instead)", err)
		}
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("target %s is neither a folder, an image file nor a block device", o.Target)
	}
	return installImage(o)
}

// part is one candidate partition.
type part struct {
	blockdev.Partition
	fstype string
	dir    string // mount point
	isRoot bool
	isBoot bool
}

func (p *part) String() string {
	if p.Number == 0 {
		return "(whole disk)"
	}
	return fmt.Sprintf("partition %d", p.Number)
}

func installImage(o Options) (*Result, error) {
	f, err := os.Open(o.Target)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	scheme, parts, err := blockdev.Partitions(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: reading the partition table: %w", o.Target, err)
	}
	if scheme == "" {
		parts = []blockdev.Partition{{Number: 0, Start: 0, Size: uint64(size)}}
	}
	var cands []*part
	for _, p := range parts {
		fstype, _, _, _ := blockdev.ProbeFS(io.NewSectionReader(f, int64(p.Start), int64(p.Size)))
		switch fstype {
		case "ext2", "ext3", "ext4", "vfat":
			cands = append(cands, &part{Partition: p, fstype: fstype})
		}
	}
	f.Close()
	if len(cands) == 0 {
		return nil, fmt.Errorf("%s: no ext2/3/4 or vfat filesystem in it (table %q, %d partitions)", o.Target, scheme, len(parts))
	}

	work, err := os.MkdirTemp("", "ofsroot-install-mnt-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var mounted []*part
	defer func() {
		for _, p := range mounted {
			umount(p.dir)
		}
	}()
	for _, p := range cands {
		p.dir = filepath.Join(work, fmt.Sprintf("p%d", p.Number))
		if err := os.Mkdir(p.dir, 0o700); err != nil {
			return nil, err
		}
		if p.fstype == "vfat" {
			// FAT is read and written with mtools: no mount, and no
			// need for the host kernel to have vfat.
			if err := fatRead(o.Target, p); err != nil {
				return nil, err
			}
			continue
		}
		if err := mountPart(o.Target, p, true); err != nil {
			return nil, err
		}
		mounted = append(mounted, p)
	}
	var root, boot *part
	for _, p := range cands {
		if isRoot(p.dir) && root == nil {
			root, p.isRoot = p, true
		}
	}
	if root == nil || root.fstype == "vfat" {
		return nil, fmt.Errorf("%s: no ext2/3/4 partition holds a root (etc/ with sbin/init or lib/modules)", o.Target)
	}
	for _, p := range cands {
		if p != root && hasKernel(p.dir) {
			boot, p.isBoot = p, true
			break
		}
	}
	places := Places{Root: root.dir, Boot: filepath.Join(root.dir, "boot"), BootShown: "/boot"}
	writable := root
	if boot != nil {
		places.Boot, places.BootShown, writable = boot.dir, fmt.Sprintf("(%s)", boot), boot
	}
	if writable.fstype != "vfat" {
		// Only the partition written to is mounted read-write.
		if err := umount(writable.dir); err != nil {
			return nil, err
		}
		if err := mountPart(o.Target, writable, false); err != nil {
			return nil, err
		}
	}
	res, err := Into(places, o)
	if err == nil && writable.fstype == "vfat" {
		// Into wrote the copy; the same files go to the partition.
		err = fatWrite(o.Target, writable, res.Changes)
	}
	if res != nil {
		res.Root = fmt.Sprintf("%s %s (%s)", o.Target, root, root.fstype)
		res.Boot = fmt.Sprintf("%s %s (%s)", o.Target, writable, writable.fstype)
		if boot == nil {
			res.Boot += " /boot"
		}
	}
	return res, err
}

func isRoot(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "etc")); err != nil {
		return false
	}
	for _, p := range []string{"sbin/init", "lib/modules", "usr/lib/modules", "usr/sbin/init"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

func hasKernel(dir string) bool {
	for _, pat := range []string{"vmlinuz*", "zImage", "Image", "extlinux/extlinux.conf", "boot.scr"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return true
		}
	}
	return false
}

func mountPart(target string, p *part, ro bool) error {
	opts := []string{"loop", fmt.Sprintf("offset=%d", p.Start), fmt.Sprintf("sizelimit=%d", p.Size)}
	if ro {
		opts = append([]string{"ro"}, opts...)
	} else {
		opts = append([]string{"rw"}, opts...)
	}
	cmd := exec.Command("mount", "-t", p.fstype, "-o", strings.Join(opts, ","), target, p.dir)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t %s -o %s %s %s (%s): %v: %s", p.fstype, strings.Join(opts, ","), target, p.dir, p, err, strings.TrimSpace(string(o)))
	}
	return nil
}

func umount(dir string) error {
	if o, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("umount %s: %v: %s", dir, err, strings.TrimSpace(string(o)))
	}
	return nil
}

func mtoolsImage(target string, p *part) string {
	return fmt.Sprintf("%s@@%d", target, p.Start)
}

// fatRead copies the files of FAT partition p into p.dir.
func fatRead(target string, p *part) error {
	cmd := exec.Command("mcopy", "-s", "-n", "-m", "-i", mtoolsImage(target, p), "::/", p.dir)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("reading FAT %s of %s with mcopy: %v: %s (is mtools installed?)", p, target, err, strings.TrimSpace(string(o)))
	}
	return nil
}

// fatWrite copies what changed in p.dir back to FAT partition p: each
// backup first, then the new file.
func fatWrite(target string, p *part, changes []Change) error {
	for _, c := range changes {
		names := []string{c.Name}
		if c.Backup != "" {
			names = []string{c.Name + BackupSuffix, c.Name}
		}
		for _, n := range names {
			cmd := exec.Command("mcopy", "-o", "-m", "-i", mtoolsImage(target, p), filepath.Join(p.dir, n), "::/"+filepath.ToSlash(n))
			cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
			if o, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("writing %s to FAT %s of %s with mcopy: %v: %s", n, p, target, err, strings.TrimSpace(string(o)))
			}
		}
	}
	return nil
}
