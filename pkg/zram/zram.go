// Package zram is the compressed RAM disk behind ofs-upper=zram: the
// sizes the layer gets (Sizes), the kernel's zram files read and parsed
// (ParseMMStat, ParseAlgorithms), the choice of compressor
// (ChooseAlgorithm), and a Device that sets one up through sysfs.
//
// The parsers are pure; Device works on a /sys/block/zramN folder given
// to it, so tests run it on a folder of their own or on a zram device
// they hot-add.
//
// What a full cap does: past mem_limit the kernel's zram fails the write
// of the block (an I/O error), and a filesystem on it sees that late, at
// writeback, after write(2) has returned success: measured on Linux
// 6.18, 40 MB written onto an ext4 on a zram capped at 8 MB "succeeded"
// and the data was lost. So Sizes keeps the disk below the cap, by the
// worst case (incompressible data): the filesystem is full, and writes
// get ENOSPC, before the RAM the device takes reaches mem_limit.
package zram

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mke2fs is where the initramfs carries the static mke2fs (busybox's
// applet, by argv[0]) the layer's filesystem is made with.
const Mke2fs = "/sbin/mke2fs"

// ModuleTag is the order-file tag (modload.Entry.RootFS) of the zram
// modules: loaded only when a zram layer is asked for. A compressor's
// modules are tagged CompressorTag(name).
const ModuleTag = "zram"

// CompressorTag is the order-file tag of the modules of compressor alg.
func CompressorTag(alg string) string { return "zram-" + alg }

// FSLabel is the label of the layer's filesystem.
const FSLabel = "ofsroot-zram"

// Page is the unit disksize and mem_limit are rounded down to.
const Page = 4096

// MinDisksize is the smallest layer made: below it mke2fs has no room
// for its own tables.
const MinDisksize = 1 << 20

// Margin is the share of mem_limit the disk leaves unused: what the
// allocator (zsmalloc) may take beyond the data itself, one part in
// Margin.
const Margin = 32

// Sizes returns the layer's disksize and mem_limit: size is what
// ofs-size asks, memCap the RAM the layer may take
// (cmdline.Config.RAMCap; capped false: no cap, mem_limit 0). The disk
// is cut to memCap less 1/Margin, so that incompressible data fills the
// filesystem before the device reaches its cap (see the package doc);
// cut says so.
func Sizes(size, memCap uint64, capped bool) (disksize, memLimit uint64, cut bool) {
	disksize = size / Page * Page
	if !capped {
		return disksize, 0, false
	}
	memLimit = memCap / Page * Page
	most := (memLimit - memLimit/Margin) / Page * Page
	if disksize > most {
		return most, memLimit, true
	}
	return disksize, memLimit, false
}

// MMStat is /sys/block/zramN/mm_stat, in bytes (pages counts pages).
type MMStat struct {
	OrigDataSize   uint64 // data stored, uncompressed
	ComprDataSize  uint64 // the same, compressed
	MemUsedTotal   uint64 // RAM the device takes, allocator overhead included
	MemLimit       uint64 // mem_limit, 0 for none
	MemUsedMax     uint64 // the most MemUsedTotal has been
	SamePages      uint64 // pages of one repeated word, stored without RAM
	PagesCompacted uint64
	HugePages      uint64 // incompressible pages, stored whole
}

// Ratio is the compression ratio, orig_data_size / compr_data_size; 0
// with nothing stored.
func (m MMStat) Ratio() float64 {
	if m.ComprDataSize == 0 {
		return 0
	}
	return float64(m.OrigDataSize) / float64(m.ComprDataSize)
}

// ParseMMStat reads mm_stat: numbers separated by blanks, at least the
// first five (kernels before 4.7 have no mm_stat; later ones add fields
// at the end).
func ParseMMStat(text string) (MMStat, error) {
	f := strings.Fields(text)
	if len(f) < 5 {
		return MMStat{}, fmt.Errorf("mm_stat %q: %d fields, want at least 5", text, len(f))
	}
	var n [8]uint64
	for i := 0; i < len(f) && i < len(n); i++ {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return MMStat{}, fmt.Errorf("mm_stat field %d %q: not a count", i+1, f[i])
		}
		n[i] = v
	}
	return MMStat{OrigDataSize: n[0], ComprDataSize: n[1], MemUsedTotal: n[2], MemLimit: n[3], MemUsedMax: n[4], SamePages: n[5], PagesCompacted: n[6], HugePages: n[7]}, nil
}

// ParseAlgorithms reads comp_algorithm ("lzo [lzo-rle] lz4 zstd"): the
// compressors the kernel offers, in its order, and the one in use (in
// brackets).
func ParseAlgorithms(text string) (offered []string, current string) {
	for _, w := range strings.Fields(text) {
		if strings.HasPrefix(w, "[") && strings.HasSuffix(w, "]") && len(w) > 2 {
			w = w[1 : len(w)-1]
			current = w
		}
		offered = append(offered, w)
	}
	return offered, current
}

// ChooseAlgorithm picks the compressor: asked when the kernel offers it,
// else the kernel's current one ("" asked: that one, no problem). A
// problem says why asked was not taken.
func ChooseAlgorithm(asked string, offered []string, current string) (alg, problem string) {
	if asked == "" {
		return current, ""
	}
	for _, o := range offered {
		if o == asked {
			return asked, ""
		}
	}
	return current, fmt.Sprintf("the kernel's zram offers %s, not %s", strings.Join(offered, ", "), asked)
}

// Stat is a device's state as ofsctl reports it.
type Stat struct {
	Device        string  `json:"device"`    // /dev/zram0
	Algorithm     string  `json:"algorithm"` // the compressor in use
	DisksizeBytes uint64  `json:"disksize_bytes"`
	MM            MMStat  `json:"-"`
	Ratio         float64 `json:"compression_ratio"`
	// DataBytes and ComprBytes are orig_data_size and compr_data_size.
	DataBytes  uint64 `json:"data_bytes"`
	ComprBytes uint64 `json:"compressed_bytes"`
	// MemUsedBytes is the RAM the device takes; MemLimitBytes its cap
	// (0: none); MemPercent the first as a share of the second.
	MemUsedBytes    uint64  `json:"mem_used_bytes"`
	MemUsedMaxBytes uint64  `json:"mem_used_max_bytes"`
	MemLimitBytes   uint64  `json:"mem_limit_bytes"`
	MemPercent      float64 `json:"mem_percent,omitempty"`
}

// Device is one zram device: its /sys/block folder and its /dev node.
type Device struct {
	Sys, Dev string
}

// At is the device zramN under sys (/sys) and dev (/dev).
func At(sys, dev string, n int) Device {
	name := fmt.Sprintf("zram%d", n)
	return Device{Sys: filepath.Join(sys, "block", name), Dev: filepath.Join(dev, name)}
}

// ForSource is the device behind a mount source such as /dev/zram0,
// under sys; false when the source is no zram device.
func ForSource(sys, source string) (Device, bool) {
	name := filepath.Base(source)
	rest, ok := strings.CutPrefix(name, "zram")
	if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !strings.HasPrefix(source, "/dev/") {
		return Device{}, false
	}
	return Device{Sys: filepath.Join(sys, "block", name), Dev: source}, true
}

// HotAdd asks the kernel for one more zram device
// (/sys/class/zram-control/hot_add under sys) and returns it.
func HotAdd(sys, dev string) (Device, error) {
	data, err := os.ReadFile(filepath.Join(sys, "class/zram-control/hot_add"))
	if err != nil {
		return Device{}, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return Device{}, fmt.Errorf("zram hot_add said %q", data)
	}
	return At(sys, dev, n), nil
}

// HotRemove gives a hot-added device back to the kernel.
func (d Device) HotRemove(sys string) error {
	n := strings.TrimPrefix(filepath.Base(d.Sys), "zram")
	return os.WriteFile(filepath.Join(sys, "class/zram-control/hot_remove"), []byte(n), 0)
}

// AttrError is a zram sysfs file that could not be read or written. It
// keeps the errno (EBUSY: the device is set up already; EINVAL: a value
// the kernel refuses).
type AttrError struct {
	Op, Path, Value string
	Err             error
}

func (e *AttrError) Error() string {
	if e.Op == "write" {
		return fmt.Sprintf("echo %s > %s: %v", e.Value, e.Path, e.Err)
	}
	return fmt.Sprintf("read %s: %v", e.Path, e.Err)
}

func (e *AttrError) Unwrap() error { return e.Err }

func (d Device) read(name string) (string, error) {
	p := filepath.Join(d.Sys, name)
	data, err := os.ReadFile(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", &AttrError{Op: "read", Path: p, Err: err}
	}
	return strings.TrimSpace(string(data)), nil
}

func (d Device) write(name, value string) error {
	p := filepath.Join(d.Sys, name)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return &AttrError{Op: "write", Path: p, Value: value, Err: err}
	}
	return nil
}

// Exists says whether the device's sysfs folder is there.
func (d Device) Exists() bool {
	_, err := os.Stat(filepath.Join(d.Sys, "disksize"))
	return err == nil
}

// Algorithms reads comp_algorithm.
func (d Device) Algorithms() (offered []string, current string, err error) {
	s, err := d.read("comp_algorithm")
	if err != nil {
		return nil, "", err
	}
	offered, current = ParseAlgorithms(s)
	return offered, current, nil
}

// SetAlgorithm writes comp_algorithm (before disksize).
func (d Device) SetAlgorithm(alg string) error { return d.write("comp_algorithm", alg) }

// SetMemLimit writes mem_limit, in bytes (0: no cap).
func (d Device) SetMemLimit(n uint64) error { return d.write("mem_limit", strconv.FormatUint(n, 10)) }

// SetDisksize writes disksize, in bytes: the device is then usable.
func (d Device) SetDisksize(n uint64) error { return d.write("disksize", strconv.FormatUint(n, 10)) }

// Disksize reads disksize; 0 is a device not set up.
func (d Device) Disksize() (uint64, error) {
	s, err := d.read("disksize")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// Reset frees the device's memory and unsets it (it must not be open).
func (d Device) Reset() error { return d.write("reset", "1") }

// Stat reads the device's state.
func (d Device) Stat() (*Stat, error) {
	mm, err := d.read("mm_stat")
	if err != nil {
		return nil, err
	}
	m, err := ParseMMStat(mm)
	if err != nil {
		return nil, err
	}
	s := &Stat{Device: d.Dev, MM: m, Ratio: m.Ratio(), DataBytes: m.OrigDataSize, ComprBytes: m.ComprDataSize,
		MemUsedBytes: m.MemUsedTotal, MemUsedMaxBytes: m.MemUsedMax, MemLimitBytes: m.MemLimit}
	if m.MemLimit > 0 {
		s.MemPercent = float64(int(float64(m.MemUsedTotal)*1000/float64(m.MemLimit)+0.5)) / 10
	}
	if _, s.Algorithm, err = d.Algorithms(); err != nil {
		return nil, err
	}
	if s.DisksizeBytes, err = d.Disksize(); err != nil {
		return nil, err
	}
	return s, nil
}
