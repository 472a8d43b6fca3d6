package initramfs

import (
	"compress/gzip"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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
