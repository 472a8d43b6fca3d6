package bootlab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/ofsroot/ofsroot/pkg/diskimage"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/initramfs"
)

// Fixed identities of the test root, so the tests can name it by UUID=,
// LABEL= and PARTUUID= and images come out the same on every run.
const (
	RootUUID  = "0f5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
	RootLabel = "ofsroot-test"
	// DiskID is the MBR disk signature; partition N is PARTUUID=DiskID-0N.
	DiskID = "0fa11ed5"
	// SourceDateEpoch stamps every file and the filesystem (1 Jan 2024).
	SourceDateEpoch = 1704067200
)

// FstabLines is the test root's /etc/fstab. The init must drop the / and
// swap lines, add a /mnt/root-RO line and keep the rest.
var FstabLines = []string{
	"# /etc/fstab of the ofsroot test root",
	"# <file system> <mount point> <type> <options> <dump> <pass>",
	"UUID=" + RootUUID + " / ext4 defaults,errors=remount-ro 0 1",
	"/dev/vdb1 none swap sw 0 0",
	"",
	"# scratch space",
	"tmpfs /tmp tmpfs defaults,nosuid,size=10% 0 0",
	"LABEL=ofsroot-data /data ext4 defaults,nofail 0 2",
}

// Hostname is the test root's /etc/hostname.
const Hostname = "ofsroot-probe"

// BuildProbe compiles tests/probe for board b, static and cgo-free, into
// out.
func BuildProbe(b board.Board, out string) error { return GoBuild(b, "./tests/probe", out) }

// GoBuild cross-compiles the command pkg of the source tree (ModuleRoot)
// for the board into out, with the builder's own command
// (initramfs.GoBuildCommand): static, cgo-free, stripped.
func GoBuild(b board.Board, pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd, err := initramfs.GoBuildCommand(root, pkg, out, b)
	if err != nil {
		return err
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v\n%s", pkg, b.Name, err, o)
	}
	return nil
}

// WriteRootTree fills dir with the test root: /sbin/init (a copy of
// initBinary), /etc/fstab (FstabLines), /etc/hostname, and the empty
// mount points /proc /sys /dev /run /mnt /tmp /data. Every entry gets the
// SourceDateEpoch time stamp.
func WriteRootTree(dir, initBinary string) error {
	for _, d := range []string{"sbin", "etc", "proc", "sys", "dev", "run", "mnt", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777|os.ModeSticky); err != nil {
		return err
	}
	if err := copyFile(initBinary, filepath.Join(dir, "sbin", "init"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "fstab"), []byte(strings.Join(FstabLines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "hostname"), []byte(Hostname+"\n"), 0o644); err != nil {
		return err
	}
	stamp := time.Unix(SourceDateEpoch, 0)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, stamp, stamp)
	})
}

// Ext4 describes a filesystem image to make.
type Ext4 struct {
	Dir       string // contents
	SizeBytes int64  // image size; a multiple of 1 MiB is best
	Label     string // -L
	UUID      string // -U, also the directory hash seed
}

// MakeExt4 writes an ext4 filesystem image holding e.Dir to out, made the
// same way every time (fixed UUID, hash seed and time stamps).
func MakeExt4(e Ext4, out string) error {
	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := f.Truncate(e.SizeBytes); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return mkfsExt4(e, out, 0)
}

func mkfsExt4(e Ext4, out string, offset int64) error {
	ext := []string{"hash_seed=" + e.UUID, "root_owner=0:0"}
	if offset > 0 {
		ext = append(ext, "offset="+strconv.FormatInt(offset, 10))
	}
	args := []string{"-q", "-F", "-t", "ext4", "-d", e.Dir, "-L", e.Label, "-U", e.UUID, "-E", strings.Join(ext, ","), out}
	if offset > 0 {
		// With an offset mkfs cannot take the size from the file.
		args = append(args, strconv.FormatInt(e.SizeBytes/1024, 10)+"k")
	}
	cmd := exec.Command("mkfs.ext4", args...)
	// E2FSPROGS_FAKE_TIME pins the time stamps mke2fs writes itself;
	// newer e2fsprogs read SOURCE_DATE_EPOCH for the same purpose.
	epoch := strconv.Itoa(SourceDateEpoch)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+epoch, "SOURCE_DATE_EPOCH="+epoch)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v\n%s", strings.Join(args, " "), err, o)
	}
	return diskimage.PinTimes(out, offset, e.Dir, SourceDateEpoch)
}

// Disk describes a partitioned MBR disk to make.
type Disk struct {
	// FS is the filesystem to put in the root partition.
	FS Ext4
	// Partition is the root partition's number (1-4). The ones before it
	// are small empty Linux partitions of 1 MiB each.
	Partition int
	// PowerOfTwo rounds the disk size up to a power of two (SD cards in
	// QEMU need it).
	PowerOfTwo bool
}

// DiskLayout tells where MakeMBRDisk put things.
type DiskLayout struct {
	SizeBytes   int64
	StartBytes  int64 // the root partition's first byte
	PartUUID    string
	PartitionNo int
}

const mib = 1 << 20

// MakeMBRDisk writes a disk image to out with an MBR (disk signature
// DiskID) whose partition d.Partition holds the ext4 filesystem d.FS.
func MakeMBRDisk(d Disk, out string) (DiskLayout, error) {
	if d.Partition < 1 || d.Partition > 4 {
		return DiskLayout{}, fmt.Errorf("partition %d: MBR primary partitions are 1-4", d.Partition)
	}
	fsSize := (d.FS.SizeBytes + mib - 1) / mib * mib
	start := int64(mib) * int64(d.Partition) // 1 MiB for the MBR, 1 MiB per partition before
	size := start + fsSize
	if d.PowerOfTwo {
		p := int64(1)
		for p < size {
			p <<= 1
		}
		size = p
	}
	var script bytes.Buffer
	fmt.Fprintf(&script, "label: dos\nlabel-id: 0x%s\nunit: sectors\n\n", DiskID)
	for n := 1; n < d.Partition; n++ {
		fmt.Fprintf(&script, "start=%d, size=%d, type=83\n", int64(n)*mib/512, mib/512)
	}
	fmt.Fprintf(&script, "start=%d, size=%d, type=83\n", start/512, fsSize/512)

	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return DiskLayout{}, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return DiskLayout{}, err
	}
	f.Close()
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out)
	cmd.Stdin = &script
	if o, err := cmd.CombinedOutput(); err != nil {
		return DiskLayout{}, fmt.Errorf("sfdisk %s: %v\n%s\nscript:\n%s", out, err, o, script.String())
	}
	fs := d.FS
	fs.SizeBytes = fsSize
	if err := mkfsExt4(fs, out, start); err != nil {
		return DiskLayout{}, err
	}
	return DiskLayout{
		SizeBytes:   size,
		StartBytes:  start,
		PartUUID:    fmt.Sprintf("%s-%02d", DiskID, d.Partition),
		PartitionNo: d.Partition,
	}, nil
}

// SfdiskDump is the part of `sfdisk --json` the tests check.
type SfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Unit       string `json:"unit"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// ReadPartitionTable runs sfdisk --json on a disk image.
func ReadPartitionTable(image string) (*SfdiskDump, error) {
	out, err := exec.Command("sfdisk", "--json", image).Output()
	if err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w", image, err)
	}
	var d SfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		return nil, fmt.Errorf("sfdisk --json %s: %w", image, err)
	}
	return &d, nil
}

// CopySparse copies a disk image, leaving holes where the source has
// runs of zeros, so that each boot can have its own writable copy cheaply.
func CopySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					out.Close()
					return err
				}
			} else if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Truncate(st.Size()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// Fsck runs e2fsck -fn (force, change nothing) on an ext4 image, or on
// the filesystem offset bytes into a disk image, and returns its output
// on failure.
func Fsck(image string, offset int64) error {
	target := image
	if offset > 0 {
		// e2fsck has no offset flag; the unix I/O manager takes
		// "?offset=N" after the file name.
		target = fmt.Sprintf("%s?offset=%d", image, offset)
	}
	if o, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
		return fmt.Errorf("e2fsck -fn %s: %v\n%s", target, err, o)
	}
	return nil
}
