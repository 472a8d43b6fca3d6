package bootlab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
)

// MakeDataDisk writes a disk image to out with an MBR (signature
// 0x0da7a000) and one primary partition per filesystem of fss (at most
// four), each filled with its Ext4, for boots that need more partitions
// than the root (ExtraDisks). It returns each partition's layout
// (SizeBytes: the partition's size).
func MakeDataDisk(fss []Ext4, out string) ([]DiskLayout, error) {
	if len(fss) < 1 || len(fss) > 4 {
		return nil, fmt.Errorf("%d filesystems: an MBR has 1-4 primary partitions", len(fss))
	}
	const id = "0da7a000"
	var script bytes.Buffer
	fmt.Fprintf(&script, "label: dos\nlabel-id: 0x%s\nunit: sectors\n\n", id)
	var layouts []DiskLayout
	start := int64(mib)
	for i, fs := range fss {
		size := (fs.SizeBytes + mib - 1) / mib * mib
		fmt.Fprintf(&script, "start=%d, size=%d, type=83\n", start/512, size/512)
		layouts = append(layouts, DiskLayout{StartBytes: start, SizeBytes: size, PartUUID: fmt.Sprintf("%s-%02d", id, i+1), PartitionNo: i + 1})
		start += size
	}
	os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(start)
	f.Close()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out)
	cmd.Stdin = &script
	if o, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sfdisk %s: %v\n%s\nscript:\n%s", out, err, o, script.String())
	}
	for i, fs := range fss {
		fs.SizeBytes = layouts[i].SizeBytes
		if err := mkfsExt4(fs, out, layouts[i].StartBytes); err != nil {
			return nil, err
		}
	}
	return layouts, nil
}
