package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

// Compressions are the compression methods Build knows, default first.
var Compressions = []string{"gzip", "xz", "zstd", "none"}

const (
	// xzDict is the LZMA2 dictionary size. The kernel decodes an xz
	// initramfs with XZ Embedded in multi-call mode, which allocates the
	// whole dictionary; Documentation/staging/xz.rst calls 1 MiB "the
	// maximum reasonable dictionary size for in-kernel use" (the
	// kernel's own xzmisc uses it too).
	xzDict = 1 << 20
	// zstdWindow is the zstd window size. The kernel's streaming
	// decoder (lib/decompress_unzstd.c) allocates a buffer of the window
	// size and refuses windows above its limit, documented as 8 MB.
	zstdWindow = 8 << 20
)

// compressors make a WriteCloser that compresses into w; Close ends the
// stream without closing w. Each method gives the same bytes for the
// same input every time.
var compressors = map[string]func(w io.Writer) (io.WriteCloser, error){
	// gzip: no file name, no time stamp (MTIME 0), so no build
	// detail leaks into the header.
	"gzip": func(w io.Writer) (io.WriteCloser, error) {
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	},
	// xz: the kernel's XZ Embedded checks CRC32 or nothing; the xz
	// default (CRC64) makes it refuse the archive. One stream, LZMA2
	// only, no BCJ filter.
	"xz": func(w io.Writer) (io.WriteCloser, error) {
		return xz.WriterConfig{CheckSum: xz.CRC32, DictCap: xzDict}.NewWriter(w)
	},
	// zstd: a single frame (the kernel's initramfs unpacker wants the
	// cpio trailer inside the first frame it decodes), a window within
	// the kernel's limit, a content checksum, and one encoder thread.
	"zstd": func(w io.Writer) (io.WriteCloser, error) {
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true))
	},
	"none": func(w io.Writer) (io.WriteCloser, error) {
		return nopCloser{w}, nil
	},
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// unpackOption is the kernel option that lets it unpack an initramfs
// compressed each way (init/Kconfig, usr/Kconfig: CONFIG_RD_*).
var unpackOption = map[string]string{"gzip": "RD_GZIP", "xz": "RD_XZ", "zstd": "RD_ZSTD"}

// defaultOrder is the compressions Build picks from when none is asked,
// by the board's GOARCH (others: "" ): the first the kernel can unpack.
// Chosen by `ofsroot bench --icount` (the instruction clock, which does
// not stretch with the host's load): on amd64 the kernel unpacks the
// builder's zstd in 0.093 s against gzip's 0.107 s, 7% smaller; on armv7
// (sabrelite) zstd takes 0.159 s against 0.117 s, its decoder working in
// 64-bit words, so gzip stays first there. xz unpacks 5 to 6 times slower
// than either.
var defaultOrder = map[string][]string{
	"amd64": {"zstd", "gzip", "xz"},
	"":      {"gzip", "zstd", "xz"},
}

// orderFor returns defaultOrder's list for goarch.
func orderFor(goarch string) []string {
	if o, ok := defaultOrder[goarch]; ok {
		return o
	}
	return defaultOrder[""]
}

// chooseCompression returns the compression to use for kernel version
// on a board of architecture goarch,
// whose configuration is cfg (cfgErr when it could not be read): asked
// if given, else the first of orderFor(goarch) the kernel unpacks. A kernel
// whose configuration says it cannot unpack a compression never gets it,
// asked or not: the device would not boot. Without a configuration (a
// kernel tree lacking boot/config-VERSION), the asked compression or
// gzip, which every distribution kernel unpacks.
func chooseCompression(asked, goarch, version string, cfg kernelpkg.Config, cfgErr error) (string, error) {
	if cfgErr != nil {
		if !errors.Is(cfgErr, fs.ErrNotExist) {
			return "", fmt.Errorf("kernel %s: %w", version, cfgErr)
		}
		if asked == "" {
			return "gzip", nil
		}
		return asked, nil
	}
	can := func(c string) bool { return c == "none" || cfg.Has(unpackOption[c]) }
	if asked != "" {
		if !can(asked) {
			return "", fmt.Errorf("kernel %s cannot unpack a %s initramfs (CONFIG_%s is not set in its boot/config-%s); it unpacks: %s. Pass one of those with --compress",
				version, asked, unpackOption[asked], version, strings.Join(unpackable(cfg), ", "))
		}
		return asked, nil
	}
	order := orderFor(goarch)
	for _, c := range order {
		if can(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("kernel %s unpacks none of %s (boot/config-%s; it unpacks: %s): pass --compress with one it does, or none",
		version, strings.Join(order, ", "), version, strings.Join(unpackable(cfg), ", "))
}

// unpackable lists the compressions a kernel configuration unpacks, in
// the order of Compressions ("none" always).
func unpackable(cfg kernelpkg.Config) []string {
	var out []string
	for _, c := range Compressions {
		if c == "none" || cfg.Has(unpackOption[c]) {
			out = append(out, c)
		}
	}
	return out
}
