package diskimage

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

func needTools(tools ...string) error {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not installed (Debian: apt-get install dosfstools mtools e2fsprogs squashfs-tools; or scripts/setup-host.sh)", strings.Join(missing, ", "))
	}
	return nil
}

func run(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	// The caller's SOURCE_DATE_EPOCH is replaced by env's (mksquashfs
	// refuses it together with -mkfs-time).
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") && !strings.HasPrefix(e, "E2FSPROGS_FAKE_TIME=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(o)))
	}
	return nil
}

// UnpackTar unpacks a tar archive (compression detected by GNU tar) into
// dir as root, keeping numeric owners, modes, device nodes, links and
// xattrs.
func UnpackTar(archive, dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("unpacking the root archive %s keeps owners and device nodes only as root: run as root, or give an unpacked folder", archive)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return run(nil, "tar", "--numeric-owner", "--same-owner", "--preserve-permissions",
		"--xattrs", "--xattrs-include=*", "-xf", archive, "-C", dir)
}

func statOwner(fi os.FileInfo) (uid, gid uint32, rdev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid, st.Rdev
	}
	return 0, 0, 0
}

// writeTable writes l's partition table with go-diskfs, and for MBR the
// disk signature go-diskfs leaves at zero.
func writeTable(f *os.File, l Layout) error {
	switch l.Table {
	case "mbr":
		t := &mbr.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512}
		for _, p := range l.Partitions {
			mp := &mbr.Partition{Type: mbr.Linux, Start: uint32(p.Start / 512), Size: uint32(p.Size / 512)}
			if p.Role == RoleBoot {
				mp.Type = mbr.Fat32LBA
				mp.Bootable = true // U-Boot's distro boot looks here first
			}
			t.Partitions = append(t.Partitions, mp)
		}
		if err := t.Write(f, l.SizeBytes); err != nil {
			return fmt.Errorf("writing the MBR: %w", err)
		}
		sig, err := hex.DecodeString(l.DiskID)
		if err != nil || len(sig) != 4 {
			return fmt.Errorf("disk signature %q: want 8 hex digits", l.DiskID)
		}
		// Stored little-endian at 0x1B8: blkid prints it as a number.
		if _, err := f.WriteAt([]byte{sig[3], sig[2], sig[1], sig[0]}, 0x1B8); err != nil {
			return fmt.Errorf("writing the disk signature: %w", err)
		}
		return nil
	case "gpt":
		t := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true, GUID: strings.ToUpper(l.DiskID)}
		for _, p := range l.Partitions {
			gp := &gpt.Partition{Index: p.Number, Start: uint64(p.Start / 512), End: uint64((p.Start+p.Size)/512 - 1), Size: uint64(p.Size),
				Type: gpt.LinuxFilesystem, Name: p.Role, GUID: strings.ToUpper(p.PartUUID)}
			if p.Role == RoleBoot {
				gp.Type = gpt.MicrosoftBasicData
				gp.Attributes = 1 << 2 // legacy BIOS bootable: U-Boot's distro boot looks here first
			}
			t.Partitions = append(t.Partitions, gp)
		}
		if err := t.Write(f, l.SizeBytes); err != nil {
			return fmt.Errorf("writing the GPT: %w", err)
		}
		return nil
	}
	return fmt.Errorf("partition table %q: want mbr or gpt", l.Table)
}

func epochEnv(epoch int64) []string {
	if epoch == 0 {
		return nil
	}
	e := strconv.FormatInt(epoch, 10)
	return []string{"SOURCE_DATE_EPOCH=" + e, "E2FSPROGS_FAKE_TIME=" + e}
}

// makeVFAT formats partition p of image as FAT and copies the files of
// dir into it, with their modification times (stamped with epoch first
// when it is set).
func makeVFAT(image string, p Partition, dir string, epoch int64) error {
	vol := strings.ReplaceAll(p.FSUUID, "-", "")
	args := []string{"-i", vol, "-n", p.Label, "--offset", strconv.FormatInt(p.Start/512, 10)}
	if epoch != 0 {
		// mkfs.fat 4.2 stamps the label's directory entry with the
		// wall clock unless --invariant, which also forces the volume
		// ID to 1234-ABCD: patchVolumeID puts ours back.
		args = append(args, "--invariant")
	}
	args = append(args, image, strconv.FormatInt(p.Size/1024, 10))
	if err := run(epochEnv(epoch), "mkfs.vfat", args...); err != nil {
		return err
	}
	if epoch != 0 {
		if err := patchVolumeID(image, p.Start, vol); err != nil {
			return err
		}
	}
	if epoch != 0 {
		stamp := time.Unix(epoch, 0)
		if err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(path, stamp, stamp)
		}); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var srcs []string
	for _, e := range entries {
		srcs = append(srcs, filepath.Join(dir, e.Name()))
	}
	sort.Strings(srcs)
	target := fmt.Sprintf("%s@@%d", image, p.Start)
	args = append([]string{"-s", "-m", "-Q", "-i", target}, srcs...)
	return run(append(epochEnv(epoch), "MTOOLS_SKIP_CHECK=1"), "mcopy", append(args, "::/")...)
}

// patchVolumeID writes the volume ID (8 hex digits) into the FAT boot
// sector at off: at 0x27 on FAT12/16, at 0x43 on FAT32 (and in its
// backup boot sector, sector 6).
func patchVolumeID(image string, off int64, vol string) error {
	id, err := hex.DecodeString(vol)
	if err != nil || len(id) != 4 {
		return fmt.Errorf("volume ID %q: want 8 hex digits", vol)
	}
	le := []byte{id[3], id[2], id[1], id[0]}
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, off); err != nil {
		return fmt.Errorf("reading the FAT boot sector: %w", err)
	}
	where := []int64{off + 0x27}
	if bs[0x16] == 0 && bs[0x17] == 0 { // no 16-bit FAT size: FAT32
		where = []int64{off + 0x43, off + 6*512 + 0x43}
	}
	for _, w := range where {
		if _, err := f.WriteAt(le, w); err != nil {
			return fmt.Errorf("writing the FAT volume ID: %w", err)
		}
	}
	return f.Close()
}

// makeExt4 formats partition p of image as ext4 holding dir (none when
// empty) with mkfs.ext4 -d, which keeps owners, modes, device nodes,
// links and xattrs. With epoch set, debugfs pins the times mke2fs takes
// from the host (atime, ctime, crtime) and clamps modification times
// later than epoch to it, so a regenerated tree gives the same bytes.
func makeExt4(image string, p Partition, dir string, entries int64, epoch int64) error {
	ext := []string{"offset=" + strconv.FormatInt(p.Start, 10), "hash_seed=" + p.FSUUID}
	args := []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-L", p.Label, "-U", p.FSUUID, "-E", strings.Join(ext, ",")}
	if dir != "" {
		// Room for the entries plus a quarter, as -N is a minimum.
		args = append(args, "-d", dir, "-N", strconv.FormatInt(entries+entries/4+1024, 10))
	}
	args = append(args, image, strconv.FormatInt(p.Size/1024, 10)+"k")
	if err := run(epochEnv(epoch), "mkfs.ext4", args...); err != nil {
		if dir != "" {
			return fmt.Errorf("%w\n(the root partition is %d MiB: give a larger --root-size, or leave it out to have it computed)", err, p.Size/MiB)
		}
		return err
	}
	if dir == "" || epoch == 0 {
		return nil
	}
	return PinTimes(image, p.Start, dir, epoch)
}

// PinTimes sets the atime, ctime and crtime of every file of dir, as
// found in the ext4 filesystem at offset in image, to epoch with
// debugfs (mke2fs -d takes them from the host), and clamps modification
// times (which mke2fs copies from dir) to at most epoch, as
// SOURCE_DATE_EPOCH asks. Names debugfs cannot express are an error.
func PinTimes(image string, offset int64, dir string, epoch int64) error {
	var cmds strings.Builder
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		name := filepath.Join("/", rel)
		if strings.ContainsAny(name, "\"\n") {
			return fmt.Errorf("cannot pin the time stamps of %q in the ext4 root (debugfs cannot name it): rename it or leave SOURCE_DATE_EPOCH unset", name)
		}
		fields := []string{"atime", "ctime", "crtime"}
		if info.ModTime().Unix() > epoch {
			fields = append(fields, "mtime")
		}
		for _, field := range fields {
			fmt.Fprintf(&cmds, "sif \"%s\" %s @%d\n", name, field, epoch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return debugfsWrite(image, offset, epoch, cmds.String())
}

// debugfsWrite runs debugfs's requests (one a line) on the ext4
// filesystem at offset in image, writable, with epoch as its clock
// (SOURCE_DATE_EPOCH). debugfs exits 0 when a request fails and says so
// on its output: such a line (a command's name and a colon, or "File not
// found") is the error.
func debugfsWrite(image string, offset, epoch int64, requests string) error {
	target := fmt.Sprintf("%s?offset=%d", image, offset)
	cmd := exec.Command("debugfs", "-w", "-f", "-", target)
	cmd.Stdin = strings.NewReader(requests)
	cmd.Env = append(os.Environ(), epochEnv(epoch)...)
	o, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("debugfs -w %s: %v\n%s", target, err, o)
	}
	for _, l := range strings.Split(string(o), "\n") {
		if strings.HasPrefix(l, "sif:") || strings.HasPrefix(l, "write:") || strings.HasPrefix(l, "mkdir:") || strings.Contains(l, "File not found") {
			return fmt.Errorf("debugfs -w %s: %s", target, l)
		}
	}
	return nil
}

// mksquashfs makes a squashfs of dir (gzip, which every Debian kernel's
// squashfs reads), keeping owners, modes, device nodes and xattrs.
func mksquashfs(dir, out string, epoch int64, extra ...string) error {
	args := append([]string{dir, out, "-noappend", "-comp", "gzip", "-no-progress", "-quiet"}, extra...)
	if epoch == 0 {
		return run(nil, "mksquashfs", args...)
	}
	// squashfs keeps only modification times; with SOURCE_DATE_EPOCH
	// in its environment mksquashfs (4.4+) stamps the creation time
	// with it and clamps later modification times to it.
	return run(epochEnv(epoch), "mksquashfs", append(args, "-reproducible")...)
}

// writeAt copies the file src into partition p of image.
func writeAt(image, src string, p Partition) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(image, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.NewOffsetWriter(out, p.Start), in)
	if err == nil && n > p.Size {
		err = fmt.Errorf("%s (%d bytes) does not fit partition %d (%d bytes)", src, n, p.Number, p.Size)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
