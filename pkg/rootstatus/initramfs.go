package rootstatus

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ofsroot/ofsroot/pkg/flash"
)

// buildInfoName is initramfs.BuildInfoFile as a cpio entry name (this
// on-device package does not link the builder; a test checks they
// agree).
const buildInfoName = "etc/ofsroot/build.json"

// KernelInitramfs is one installed kernel (/boot/vmlinuz-VERSION) and
// whether its initramfs is ofsroot's.
type KernelInitramfs struct {
	Kernel    string `json:"kernel"`
	Initramfs string `json:"initramfs"`
	// Ofsroot is true when the initramfs carries ofsroot's build.json;
	// OfsrootVersion is the version that built it.
	Ofsroot        bool   `json:"ofsroot"`
	OfsrootVersion string `json:"ofsroot_version,omitempty"`
	// RescueShell and Zram say what the initramfs carries beyond the
	// init and its modules: a shell for ofs-rescue=shell, and what
	// ofs-upper=zram needs (without them those fall back: a halt, the
	// tmpfs layer).
	RescueShell bool `json:"rescue_shell,omitempty"`
	Zram        bool `json:"zram,omitempty"`
	// Problem says what is wrong, "" when nothing is.
	Problem string `json:"problem,omitempty"`
}

// carries says what the initramfs holds beyond the init and its
// modules, for the status text: "", or " (with a rescue shell, ...)".
func (k KernelInitramfs) carries() string {
	var with []string
	if k.RescueShell {
		with = append(with, "a rescue shell")
	}
	if k.Zram {
		with = append(with, "the zram layer's modules and mke2fs")
	}
	if len(with) == 0 {
		return ""
	}
	return " (with " + strings.Join(with, " and ") + ")"
}

// InstalledKernels lists the kernels in bootDir (vmlinuz-* and vmlinux-*)
// and checks each one's initrd.img-VERSION.
func InstalledKernels(bootDir string) []KernelInitramfs {
	var out []KernelInitramfs
	seen := map[string]bool{}
	for _, pat := range []string{"vmlinuz-*", "vmlinux-*"} {
		matches, _ := filepath.Glob(filepath.Join(bootDir, pat))
		for _, m := range matches {
			v := strings.TrimPrefix(filepath.Base(m), pat[:len(pat)-1])
			if seen[v] || strings.HasSuffix(v, ".dpkg-bak") {
				continue
			}
			seen[v] = true
			k := KernelInitramfs{Kernel: v, Initramfs: filepath.Join(bootDir, "initrd.img-"+v)}
			info, err := ReadBuildInfo(k.Initramfs)
			switch {
			case errors.Is(err, os.ErrNotExist):
				k.Problem = "no initramfs"
			case err != nil:
				k.Problem = err.Error()
			case info == nil:
				k.Problem = "not made by ofsroot (no " + buildInfoName + " in it)"
			default:
				k.Ofsroot, k.OfsrootVersion = true, info.OfsrootVersion
				k.RescueShell, k.Zram = info.ShellSHA256 != "", info.Zram
				if info.KernelVersion != v {
					k.Problem = fmt.Sprintf("made for kernel %s", info.KernelVersion)
				}
			}
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kernel < out[j].Kernel })
	return out
}

// BuildInfo is the part of an initramfs's build.json read here.
type BuildInfo struct {
	KernelVersion  string `json:"kernel_version"`
	OfsrootVersion string `json:"ofsroot_version"`
	ShellSHA256    string `json:"shell_sha256"`
	Zram           bool   `json:"zram"`
}

// ReadBuildInfo reads build.json out of an initramfs (gzip, xz, zstd or
// uncompressed newc cpio): nil without one (not ofsroot's).
func ReadBuildInfo(path string) (*BuildInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(6)
	var r io.Reader
	// The compression by its magic, as flash (one table of them).
	switch flash.Sniff(magic) {
	case flash.Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	case flash.XZ:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = xr
	case flash.Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	default:
		if string(magic) != "070701" {
			return nil, nil // another format (an early-microcode prefix, lz4...): not ofsroot's
		}
		r = br
	}
	data, err := findCpioFile(r, buildInfoName)
	if err != nil || data == nil {
		if err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	var info BuildInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, buildInfoName, err)
	}
	return &info, nil
}

// findCpioFile walks a newc archive for the file name, returning its
// content (at most 1 MiB), or nil at the trailer.
func findCpioFile(r io.Reader, name string) ([]byte, error) {
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, fmt.Errorf("cpio header: %w", err)
		}
		if string(hdr[:6]) != "070701" {
			return nil, errors.New("not a newc cpio archive")
		}
		field := func(i int) (int64, error) { return strconv.ParseInt(string(hdr[6+8*i:14+8*i]), 16, 64) }
		size, err1 := field(6)
		nameSize, err2 := field(11)
		if err1 != nil || err2 != nil || nameSize <= 0 || nameSize > 4096 {
			return nil, errors.New("bad cpio header")
		}
		nameBuf := make([]byte, pad4(110+nameSize)-110)
		if _, err := io.ReadFull(r, nameBuf); err != nil {
			return nil, err
		}
		n := strings.TrimPrefix(string(nameBuf[:nameSize-1]), "./")
		if n == "TRAILER!!!" {
			return nil, nil
		}
		if n == name {
			if size > 1<<20 {
				return nil, fmt.Errorf("%s is %d bytes", name, size)
			}
			data := make([]byte, size)
			_, err := io.ReadFull(r, data)
			return data, err
		}
		if _, err := io.CopyN(io.Discard, r, pad4(size)); err != nil {
			return nil, err
		}
	}
}

func pad4(n int64) int64 { return (n + 3) &^ 3 }
