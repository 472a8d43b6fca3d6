// Package compressed reads compressed module files (.ko.gz, .ko.xz,
// .ko.zst) for the host-side builder, which puts a distribution's modules
// in the initramfs uncompressed:
//
//	kmod.SetDecompressors(compressed.Decompressors)
//
// The init does not import it: it hands compressed modules to the kernel
// (finit_module with MODULE_INIT_COMPRESSED_FILE), and these decoders
// would be a fifth of its size.
package compressed

import (
	"compress/gzip"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompressors open a compressed module file by its suffix and give the
// module's plain bytes.
var Decompressors = map[string]func(io.Reader) (io.ReadCloser, error){
	".xz": func(r io.Reader) (io.ReadCloser, error) {
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(z), nil
	},
	".zst": func(r io.Reader) (io.ReadCloser, error) {
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return z.IOReadCloser(), nil
	},
	".gz": func(r io.Reader) (io.ReadCloser, error) {
		return gzip.NewReader(r)
	},
}
