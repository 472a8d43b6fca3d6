package initramfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ofsroot/ofsroot/pkg/zram"
)

// The compressed RAM layer (ofs-upper=zram) needs, in the initramfs,
// the zram driver and its compressors' modules, and a static mke2fs for
// the filesystem made on it at boot. They are added by Options.Zram, not
// always: on amd64 the modules are 0.63 MB (zstd's compressor alone
// 0.44 MB) and busybox 1.98 MB, about 1.3 MB gzipped in all; an image
// without them boots ofs-upper=zram on the tmpfs layer, saying why.

// ZramModules are the modules Options.Zram adds (their dependencies
// follow): the driver and the compressors Debian builds as modules
// (lzo and lzo-rle are built in).
var ZramModules = []string{"zram", "lz4", "lz4hc", "zstd"}

// zramModuleTags are the order-file tags of ZramModules: loaded by the
// init only for a zram layer, a compressor only when it is the one
// asked for (rootFSOnly gives each module's own dependencies the same
// tag).
var zramModuleTags = map[string][]string{
	"zram":  {zram.ModuleTag},
	"lz4":   {zram.CompressorTag("lz4")},
	"lz4hc": {zram.CompressorTag("lz4hc")},
	"zstd":  {zram.CompressorTag("zstd")},
}

// boardModules are the modules to plan: the board's, and ZramModules
// with Options.Zram.
func boardModules(o Options) []string {
	mods := append([]string(nil), o.Board.Modules...)
	if o.Zram != "" {
		mods = append(mods, ZramModules...)
	}
	return mods
}

// addZramMkfs puts Options.Zram's mke2fs at zram.Mke2fs: a symbolic
// link to /bin/sh when it is the same file as the shell (busybox, whose
// applet is picked by argv[0]).
func addZramMkfs(a *archive, o Options) error {
	if o.Zram == "" {
		return nil
	}
	a.dir(filepath.Dir(zram.Mke2fs))
	if o.Shell != "" && sameFile(o.Shell, o.Zram) {
		a.add(cpio.Symlink(zram.Mke2fs, "/bin/sh"))
		return nil
	}
	data, err := os.ReadFile(o.Zram)
	if err != nil {
		return fmt.Errorf("the zram layer's mke2fs: %w", err)
	}
	if err := checkExecutable("the mke2fs "+o.Zram, data, o.Board); err != nil {
		return err
	}
	a.file(zram.Mke2fs, 0o755, data)
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
