package initramfs

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/ofsroot/ofsroot/internal/sourcetree"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/debcache/debcachetest"
	"github.com/ofsroot/ofsroot/pkg/kmod"
	"github.com/ofsroot/ofsroot/pkg/kmod/modload"
)

// wantOrder are the load orders per board: the boot lab's, with squashfs.
var wantOrder = map[string][]string{
	"qemu-x86_64": {"sha256_ssse3", "crc32c_generic", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_pci",
		"virtio_blk", "jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
	"qemu-arm-virt": {"sha256_arm", "crc32c_generic", "virtio_mmio", "virtio_blk", "jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
	"sabrelite": {"sha256_arm", "crc32c_generic", "gpio_mxc", "imx2_wdt", "sdhci", "cqhci", "sdhci_pltfm", "sdhci_esdhc_imx", "spi_imx", "spi_nor",
		"jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
}

var (
	fixMu    sync.Mutex
	fixDir   string
	standins = map[string]string{} // GOARCH -> stand-in init
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func fixtures(t *testing.T) string {
	t.Helper()
	if fixDir == "" {
		d, err := os.MkdirTemp("", "initramfs-test-")
		if err != nil {
			t.Fatal(err)
		}
		fixDir = d
	}
	return fixDir
}

// standin returns the stand-in init (testdata/standin) built for goarch.
func standin(t *testing.T, goarch string) string {
	t.Helper()
	fixMu.Lock()
	defer fixMu.Unlock()
	if p, ok := standins[goarch]; ok {
		return p
	}
	p := filepath.Join(fixtures(t), "standin-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, "./testdata/standin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM=7")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in init: %v\n%s", err, out)
	}
	standins[goarch] = p
	return p
}

// kernelDeb returns the current Debian kernel package of a flavour,
// fetched into the shared cache (debcachetest).
func kernelDeb(t *testing.T, flavour string) string {
	t.Helper()
	return debcachetest.Kernel(t, flavour).Deb
}

// kernelDir returns the folder dpkg -x made of a flavour's kernel in the
// shared cache. Tests only read it.
func kernelDir(t *testing.T, flavour string) string {
	t.Helper()
	return debcachetest.Kernel(t, flavour).Dir
}

func lookup(t *testing.T, name string) board.Board {
	t.Helper()
	b, err := board.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decompress returns the cpio archive inside an initramfs file.
func decompress(t *testing.T, data []byte, method string) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch method {
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(data))
	case "xz":
		r, err = xz.NewReader(bytes.NewReader(data))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(data))
		r = d
	case "none":
		r = bytes.NewReader(data)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompressing %s: %v", method, err)
	}
	return out
}

// readArchive reads an uncompressed newc archive with u-root's reader.
func readArchive(t *testing.T, archive []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatalf("reading the archive back: %v", err)
	}
	return recs
}

func content(t *testing.T, r cpio.Record) []byte {
	t.Helper()
	data, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// expectedNames lists the entries an archive for a kernel version and
// module paths must hold, sorted.
func expectedNames(version string, modules []string) []string {
	set := map[string]bool{"dev/console": true, "init": true, "etc/ofsroot/modules.order": true, "etc/ofsroot/build.json": true,
		"lib/modules/" + version: true}
	for _, d := range Dirs {
		set[strings.TrimPrefix(d, "/")] = true
	}
	for _, m := range modules {
		for p := strings.TrimPrefix(m, "/"); p != "."; p = path.Dir(p) {
			set[p] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// checkArchive checks an archive's entries, metadata and contents
// against what Build reported.
func checkArchive(t *testing.T, archive []byte, res *Result, b board.Board, initPath, kernelRoot string, epoch int64) {
	t.Helper()
	recs := readArchive(t, archive)
	var names []string
	byName := map[string]cpio.Record{}
	inodes := map[uint64]bool{}
	for _, r := range recs {
		names = append(names, r.Name)
		byName[r.Name] = r
		if r.UID != 0 || r.GID != 0 || r.MTime != uint64(epoch) {
			t.Errorf("%s: uid %d gid %d mtime %d, want 0 0 %d", r.Name, r.UID, r.GID, r.MTime, epoch)
		}
		if inodes[r.Ino] || r.Ino == 0 {
			t.Errorf("%s: inode %d repeated or zero", r.Name, r.Ino)
		}
		inodes[r.Ino] = true
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG && r.NLink != 1 {
			t.Errorf("%s: %d links", r.Name, r.NLink)
		}
	}
	if want := expectedNames(res.KernelVersion, res.Modules); !reflect.DeepEqual(names, want) {
		t.Errorf("entries\n got %q\nwant %q", names, want)
	}
	if len(recs) != res.Entries {
		t.Errorf("%d entries, Result says %d", len(recs), res.Entries)
	}
	con := byName["dev/console"]
	if con.Mode != cpio.S_IFCHR|0o600 || con.Rmajor != 5 || con.Rminor != 1 {
		t.Errorf("/dev/console: mode %#o, device %d,%d; want a 0600 char device 5,1", con.Mode, con.Rmajor, con.Rminor)
	}
	for _, d := range Dirs {
		if r := byName[strings.TrimPrefix(d, "/")]; r.Mode != cpio.S_IFDIR|0o755 {
			t.Errorf("%s: mode %#o", d, r.Mode)
		}
	}
	initRec := byName["init"]
	want, _ := os.ReadFile(initPath)
	if initRec.Mode != cpio.S_IFREG|0o755 || !bytes.Equal(content(t, initRec), want) {
		t.Errorf("/init: mode %#o, or contents differ from %s", initRec.Mode, initPath)
	}

	// Modules: plain ELF, the same bytes as in the tree.
	tree, err := kmod.OpenTree(kernelRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Modules {
		r := byName[strings.TrimPrefix(p, "/")]
		data := content(t, r)
		if r.Mode != cpio.S_IFREG|0o644 || !strings.HasSuffix(p, ".ko") {
			t.Errorf("%s: mode %#o", p, r.Mode)
		}
		if _, err := elf.NewFile(bytes.NewReader(data)); err != nil {
			t.Errorf("%s: not a plain ELF module: %v", p, err)
		}
		rel, _ := tree.Path(res.ModuleNames[i])
		src, err := kmod.ReadModule(filepath.Join(tree.Dir, rel))
		if err != nil || !bytes.Equal(src, data) {
			t.Errorf("%s: differs from %s (%v)", p, rel, err)
		}
		if want := "/lib/modules/" + res.KernelVersion + "/" + kmod.PlainName(rel); p != want {
			t.Errorf("module path %s, want %s", p, want)
		}
	}

	// modules.order lists the modules in order.
	entries, err := modload.ParseOrder(bytes.NewReader(content(t, byName["etc/ofsroot/modules.order"])))
	if err != nil {
		t.Fatal(err)
	}
	var orderNames, orderPaths []string
	for _, e := range entries {
		orderNames = append(orderNames, e.Name())
		orderPaths = append(orderPaths, e.Path)
	}
	if !reflect.DeepEqual(orderPaths, res.Modules) || !reflect.DeepEqual(orderNames, res.ModuleNames) {
		t.Errorf("modules.order %q, Result %q", orderPaths, res.Modules)
	}

	var info BuildInfo
	if err := json.Unmarshal(content(t, byName["etc/ofsroot/build.json"]), &info); err != nil {
		t.Fatal(err)
	}
	if info.Board != b.Name || info.KernelVersion != res.KernelVersion || len(info.Modules) != len(res.Modules) ||
		info.SourceDateEpoch != epoch || info.InitSHA256 != sha256Hex(want) || info.OfsrootVersion == "" {
		t.Errorf("build.json %+v", info)
	}
}

// systemList lists a compressed initramfs with the system's
// decompressor and `cpio -itv`, returning entry name -> listing line.
func systemList(t *testing.T, file, method string) map[string]string {
	t.Helper()
	tools := map[string]string{"gzip": "gzip -dc", "xz": "xz -dc", "zstd": "zstd -dcq", "none": "cat"}
	prog := strings.Fields(tools[method])[0]
	testenv.NeedTools(t, prog, "cpio")
	cmd := exec.Command("sh", "-c", tools[method]+` "$1" | cpio -itv --quiet`, "sh", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s | cpio -itv: %v\n%s", tools[method], err, stderr.String())
	}
	lines := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		lines[f[len(f)-1]] = line
	}
	return lines
}

// TestBuildQEMUx86 builds the qemu-x86_64 initramfs from the real .deb
// (unpacked into an empty kernel cache, then from the cache) and from
// the dpkg -x folder and checks every entry.
func TestBuildQEMUx86(t *testing.T) {
	deb := kernelDeb(t, "amd64")
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	initPath := standin(t, "amd64")
	out := t.TempDir()

	// An empty cache, so that the .deb is read here, by package debpkg.
	t.Setenv("OFSROOT_CACHE", t.TempDir())
	unpacked := 0
	logf := func(format string, _ ...any) {
		if strings.HasPrefix(format, "unpacking") {
			unpacked++
		}
	}
	fromDeb, err := Build(Options{Board: b, Kernel: deb, Output: filepath.Join(out, "deb.gz"), InitBinary: initPath, Log: logf})
	if err != nil {
		t.Fatal(err)
	}
	fromCache, err := Build(Options{Board: b, Kernel: deb, Output: filepath.Join(out, "cache.gz"), InitBinary: initPath, Log: logf})
	if err != nil {
		t.Fatal(err)
	}
	if unpacked != 1 || fromCache.SHA256 != fromDeb.SHA256 {
		t.Errorf("two builds from the .deb: %d unpackings (want 1), archives %s and %s (want the same)", unpacked, fromDeb.SHA256, fromCache.SHA256)
	}
	fromDir, err := Build(Options{Board: b, Kernel: dir, Output: filepath.Join(out, "dir.gz"), InitBinary: initPath})
	if err != nil {
		t.Fatal(err)
	}
	if fromDeb.SHA256 != fromDir.SHA256 {
		t.Errorf("the .deb and its dpkg -x folder give different archives: %s, %s", fromDeb.SHA256, fromDir.SHA256)
	}
	if got := fromDir.ModuleNames; !reflect.DeepEqual(got, wantOrder[b.Name]) {
		t.Errorf("order\n got %q\nwant %q", got, wantOrder[b.Name])
	}
	// Debian's kernel unpacks zstd (CONFIG_RD_ZSTD=y): amd64's default.
	if fromDir.KernelVersion != debcachetest.Kernel(t, "amd64").Version || fromDir.Compression != "zstd" {
		t.Errorf("result %+v", fromDir)
	}
	data, err := os.ReadFile(filepath.Join(out, "dir.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != fromDir.CompressedBytes || sha256Hex(data) != fromDir.SHA256 {
		t.Errorf("Result size/hash do not match the file")
	}
	archive := decompress(t, data, "zstd")
	if int64(len(archive)) != fromDir.UncompressedBytes {
		t.Errorf("uncompressed %d bytes, Result says %d", len(archive), fromDir.UncompressedBytes)
	}
	checkArchive(t, archive, fromDir, b, initPath, dir, 0)
	t.Logf("%s: %d modules, %d entries, init %d, modules %d, cpio %d, zstd %d bytes",
		b.Name, len(fromDir.Modules), fromDir.Entries, fromDir.InitBytes, fromDir.ModuleBytes, fromDir.UncompressedBytes, fromDir.CompressedBytes)

	// No temporary files are left beside the outputs.
	entries, _ := os.ReadDir(out)
	if len(entries) != 3 {
		t.Errorf("output folder holds %d files", len(entries))
	}
}

// TestCompressionsReproducible builds each compression twice (same
// sha256), reads each back, lists it with the system's tools, and checks
// the stream settings the kernel's decoders need.
func TestCompressionsReproducible(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	initPath := standin(t, "amd64")
	const epoch = 1700000000
	for _, method := range Compressions {
		t.Run(method, func(t *testing.T) {
			out := t.TempDir()
			var results []*Result
			for i := range 2 {
				r, err := Build(Options{Board: b, Kernel: dir, Output: filepath.Join(out, fmt.Sprint(i)), InitBinary: initPath,
					Compression: method, SourceDateEpoch: epoch})
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, r)
			}
			if results[0].SHA256 != results[1].SHA256 {
				t.Errorf("two builds differ: %s, %s", results[0].SHA256, results[1].SHA256)
			}
			res := results[0]
			t.Logf("%s: %d bytes (cpio %d), sha256 %s", method, res.CompressedBytes, res.UncompressedBytes, res.SHA256)
			file := filepath.Join(out, "0")
			data, _ := os.ReadFile(file)
			checkStream(t, method, data)
			archive := decompress(t, data, method)
			checkArchive(t, archive, res, b, initPath, dir, epoch)

			listing := systemList(t, file, method)
			if want := expectedNames(res.KernelVersion, res.Modules); len(listing) != len(want) {
				t.Errorf("cpio -itv lists %d entries, want %d", len(listing), len(want))
			} else {
				for _, n := range want {
					if _, ok := listing[n]; !ok {
						t.Errorf("cpio -itv does not list %s", n)
					}
				}
			}
			con := strings.Fields(listing["dev/console"])
			if len(con) < 5 || con[0] != "crw-------" || con[2] != "root" || con[4] != "5," || con[5] != "1" {
				t.Errorf("cpio -itv: %q, want a crw------- root 5, 1 node", listing["dev/console"])
			}
			if f := strings.Fields(listing["init"]); len(f) == 0 || f[0] != "-rwxr-xr-x" {
				t.Errorf("cpio -itv: %q", listing["init"])
			}
		})
	}
}

// checkStream checks the container of each compression: what the
// kernel's decoders accept.
func checkStream(t *testing.T, method string, data []byte) {
	t.Helper()
	switch method {
	case "gzip":
		// ID1 ID2 CM FLG MTIME(4): no name, no time.
		if data[0] != 0x1f || data[1] != 0x8b || data[3] != 0 || binary.LittleEndian.Uint32(data[4:8]) != 0 {
			t.Errorf("gzip header % x: want no flags and MTIME 0", data[:10])
		}
	case "xz":
		// Stream header: magic(6), flags(2): the check type is the
		// low nibble of the second flag byte; 1 is CRC32.
		if string(data[:6]) != "\xfd7zXZ\x00" || data[7]&0x0f != 0x01 {
			t.Errorf("xz stream flags % x: want check type CRC32 (1)", data[6:8])
		}
	case "zstd":
		window, frames, err := zstdFrames(data)
		if err != nil {
			t.Fatal(err)
		}
		if frames != 1 || window > 8<<20 || window == 0 {
			t.Errorf("zstd: %d frames, window %d: want one frame with a window of at most 8 MiB", frames, window)
		}
		var h zstd.Header
		if err := h.Decode(data); err != nil || h.WindowSize > 8<<20 || !h.HasCheckSum {
			t.Errorf("zstd header %+v, %v", h, err)
		}
	}
}

// zstdFrames walks the frames and blocks of a zstd stream (RFC 8878)
// and returns the largest window size and the number of frames.
func zstdFrames(data []byte) (window uint64, frames int, err error) {
	for len(data) > 0 {
		if len(data) < 6 || binary.LittleEndian.Uint32(data) != 0xFD2FB528 {
			return 0, frames, fmt.Errorf("frame %d: bad magic", frames)
		}
		fhd := data[4]
		single := fhd&0x20 != 0
		checksum := fhd&0x04 != 0
		fcsFlag := fhd >> 6
		didFlag := fhd & 3
		pos := 5
		var w uint64
		if !single {
			wd := data[pos]
			exp := uint64(wd >> 3)
			base := uint64(1) << (10 + exp)
			w = base + base/8*uint64(wd&7)
			pos++
		}
		pos += []int{0, 1, 2, 4}[didFlag]
		fcsLen := []int{0, 2, 4, 8}[fcsFlag]
		if single && fcsFlag == 0 {
			fcsLen = 1
		}
		if single {
			var fcs uint64
			for i := 0; i < fcsLen; i++ {
				fcs |= uint64(data[pos+i]) << (8 * i)
			}
			if fcsLen == 2 {
				fcs += 256
			}
			w = fcs
		}
		pos += fcsLen
		window = max(window, w)
		for {
			if pos+3 > len(data) {
				return 0, frames, fmt.Errorf("truncated block header")
			}
			bh := uint32(data[pos]) | uint32(data[pos+1])<<8 | uint32(data[pos+2])<<16
			pos += 3
			last := bh&1 != 0
			typ := (bh >> 1) & 3
			size := int(bh >> 3)
			if typ == 1 { // RLE: one byte stored
				size = 1
			}
			pos += size
			if last {
				break
			}
		}
		if checksum {
			pos += 4
		}
		if pos > len(data) {
			return 0, frames, fmt.Errorf("truncated frame")
		}
		data = data[pos:]
		frames++
	}
	return window, frames, nil
}

// TestSystemXZList checks with xz itself that the xz output has one
// stream with a CRC32 check.
func TestSystemXZList(t *testing.T) {
	dir := kernelDir(t, "amd64")
	testenv.NeedTools(t, "xz")
	out := filepath.Join(t.TempDir(), "initrd.xz")
	if _, err := Build(Options{Board: lookup(t, "qemu-x86_64"), Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), Compression: "xz"}); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("xz", "--robot", "--list", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(list), "\n") {
		f := strings.Split(line, "\t")
		// file<TAB>streams<TAB>blocks<TAB>compressed<TAB>uncompressed<TAB>ratio<TAB>check
		if f[0] == "file" && (f[1] != "1" || f[6] != "CRC32") {
			t.Errorf("xz --list: %q: want 1 stream, CRC32", line)
		}
	}
}

func TestBuildARMBoards(t *testing.T) {
	dir := kernelDir(t, "armmp")
	initPath := standin(t, "arm")
	for _, name := range []string{"qemu-arm-virt", "sabrelite"} {
		t.Run(name, func(t *testing.T) {
			b := lookup(t, name)
			out := filepath.Join(t.TempDir(), "initrd")
			res, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: initPath})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.ModuleNames, wantOrder[name]) {
				t.Errorf("order\n got %q\nwant %q", res.ModuleNames, wantOrder[name])
			}
			data, _ := os.ReadFile(out)
			checkArchive(t, decompress(t, data, "gzip"), res, b, initPath, dir, 0)
			t.Logf("%s: %s; %d bytes", name, strings.Join(res.ModuleNames, " "), res.CompressedBytes)
		})
	}
	// From the .deb too, for one board.
	deb := kernelDeb(t, "armmp")
	res, err := Build(Options{Board: lookup(t, "sabrelite"), Kernel: deb, Output: filepath.Join(t.TempDir(), "i"), InitBinary: initPath})
	if err != nil || !reflect.DeepEqual(res.ModuleNames, wantOrder["sabrelite"]) {
		t.Errorf("sabrelite from the .deb: %v", err)
	}
}

func TestWithoutModules(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	initPath := standin(t, "amd64")
	out := filepath.Join(t.TempDir(), "initrd")
	res, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: initPath, WithoutModules: []string{"overlay"}})
	if err != nil {
		t.Fatal(err)
	}
	want := wantOrder[b.Name][:len(wantOrder[b.Name])-1]
	if !reflect.DeepEqual(res.Omitted, []string{"overlay"}) || !reflect.DeepEqual(res.ModuleNames, want) || len(res.Warnings) != 0 {
		t.Errorf("omitted %q, modules %q, warnings %q", res.Omitted, res.ModuleNames, res.Warnings)
	}
	data, _ := os.ReadFile(out)
	archive := decompress(t, data, res.Compression) // zstd: amd64's default
	checkArchive(t, archive, res, b, initPath, dir, 0)
	if bytes.Contains(archive, []byte("overlay.ko")) {
		t.Error("overlay.ko is still in the archive")
	}
	var info BuildInfo
	for _, r := range readArchive(t, archive) {
		if r.Name == "etc/ofsroot/build.json" {
			json.Unmarshal(content(t, r), &info)
		}
	}
	if !reflect.DeepEqual(info.WithoutModules, []string{"overlay"}) {
		t.Errorf("build.json without_modules %q", info.WithoutModules)
	}

	// Leaving out a dependency warns about its users.
	res, err = Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: initPath, WithoutModules: []string{"jbd2", "crc32c-generic"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Omitted, []string{"crc32c_generic", "jbd2"}) || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "ext4 needs jbd2") {
		t.Errorf("omitted %q, warnings %q", res.Omitted, res.Warnings)
	}

	// A name not in the list is refused, listing the modules.
	_, err = Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: initPath, WithoutModules: []string{"ovrlay"}})
	if err == nil || !strings.Contains(err.Error(), `"ovrlay"`) || !strings.Contains(err.Error(), "overlay") {
		t.Errorf("unknown module left out: %v", err)
	}
}

func TestModuleParams(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	out := filepath.Join(t.TempDir(), "initrd")
	_, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), Compression: "none",
		ModuleParams: map[string]string{"virtio-blk": "queue_depth=64"}})
	if err == nil {
		// virtio-blk is spelt with a dash: normalised, it matches.
		data, _ := os.ReadFile(out)
		if !bytes.Contains(data, []byte("virtio_blk.ko queue_depth=64\n")) {
			t.Error("parameters missing from modules.order")
		}
	} else {
		t.Fatal(err)
	}
	_, err = Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), ModuleParams: map[string]string{"nosuch": "x=1"}})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("parameters for a module not in the image: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	b := lookup(t, "qemu-x86_64")
	tmp := t.TempDir()
	emptyDir := filepath.Join(tmp, "empty")
	os.Mkdir(emptyDir, 0o755)
	notDeb := filepath.Join(tmp, "kernel.deb")
	os.WriteFile(notDeb, []byte("not a package"), 0o644)
	out := filepath.Join(tmp, "initrd")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no board", Options{Kernel: emptyDir, Output: out}, "no board"},
		{"no kernel", Options{Board: b, Output: out}, "no kernel given"},
		{"no output", Options{Board: b, Kernel: emptyDir}, "no output"},
		{"bad compression", Options{Board: b, Kernel: emptyDir, Output: out, Compression: "lz4"}, `unknown compression "lz4" (known: gzip, xz, zstd, none)`},
		{"missing kernel", Options{Board: b, Kernel: filepath.Join(tmp, "nope"), Output: out}, "no such file"},
		{"negative epoch", Options{Board: b, Kernel: emptyDir, Output: out, SourceDateEpoch: -1}, "outside what cpio can hold"},
		{"epoch past 2106", Options{Board: b, Kernel: emptyDir, Output: out, SourceDateEpoch: 1 << 32}, "outside what cpio can hold"},
		{"folder without modules", Options{Board: b, Kernel: emptyDir, Output: out}, "has no lib/modules/VERSION"},
		{"not a deb", Options{Board: b, Kernel: notDeb, Output: out}, "neither a folder nor a Debian package"},
	} {
		_, err := Build(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed build left an output")
	}

	// A package without a module tree, such as a metapackage.
	testenv.NeedTools(t, "dpkg-deb")
	pkg := filepath.Join(tmp, "pkg")
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "usr/share/doc/x"), 0o755)
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte("Package: x\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: x\n"), 0o644)
	meta := filepath.Join(tmp, "meta.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", pkg, meta).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	_, err := Build(Options{Board: b, Kernel: meta, Output: out, InitBinary: standin(t, "amd64")})
	if err == nil || !strings.Contains(err.Error(), "meta.deb: the package has no lib/modules/VERSION") {
		t.Errorf("package without modules: %v", err)
	}
}

func TestBuildErrorsRealKernel(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	amd64Init, armInit := standin(t, "amd64"), standin(t, "arm")
	tmp := t.TempDir()
	out := filepath.Join(tmp, "initrd")

	typo := b
	typo.Modules = append(append([]string{}, b.Modules...), "ext5")
	if _, err := Build(Options{Board: typo, Kernel: dir, Output: out, InitBinary: amd64Init}); err == nil ||
		!strings.Contains(err.Error(), `no module "ext5"`) || !strings.Contains(err.Error(), "did you mean ext4") {
		t.Errorf("misspelt module: %v", err)
	}
	if _, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: armInit}); err == nil ||
		!strings.Contains(err.Error(), "EM_ARM") || !strings.Contains(err.Error(), "GOARCH=amd64") {
		t.Errorf("ARM init for an x86 board: %v", err)
	}
	if _, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: "/bin/true"}); err == nil ||
		!strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("dynamic init: %v", err)
	}
	script := filepath.Join(tmp, "init.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	if _, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: script}); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("script init: %v", err)
	}
	if _, err := Build(Options{Board: b, Kernel: dir, Output: filepath.Join(tmp, "no/such/dir/initrd"), InitBinary: amd64Init}); err == nil ||
		!strings.Contains(err.Error(), "output") {
		t.Errorf("output in a missing folder: %v", err)
	}
	// The output is replaced whole.
	os.WriteFile(out, []byte("old"), 0o600)
	if _, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: amd64Init}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Size() < 1000 || fi.Mode().Perm() != 0o644 {
		t.Errorf("output not replaced: %v", fi)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 2 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestBuildInitFromSource builds cmd/init of a stand-in source tree for
// an ARM board, through the same go build command the real one uses.
func TestBuildInitFromSource(t *testing.T) {
	dir := kernelDir(t, "armmp")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "cmd/init"), 0o755)
	os.MkdirAll(filepath.Join(src, "deep/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+sourcetree.ModulePath+" // the stand-in\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "cmd/init/main.go"), []byte("package main\n\nfunc main() { println(\"stand-in\") }\n"), 0o644)
	var logged []string
	res, err := Build(Options{Board: lookup(t, "qemu-arm-virt"), Kernel: dir, Output: filepath.Join(t.TempDir(), "i"),
		Compression: "none", SourceDir: filepath.Join(src, "deep/sub"),
		Log: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) == 0 || !strings.Contains(logged[0], "go build -trimpath -buildvcs=false -ldflags -s -w -buildid=") {
		t.Errorf("log %q", logged)
	}
	data, _ := os.ReadFile(res.Output)
	for _, r := range readArchive(t, data) {
		if r.Name == "init" {
			f, err := elf.NewFile(bytes.NewReader(content(t, r)))
			if err != nil || f.Machine != elf.EM_ARM {
				t.Errorf("built init: %v", err)
			}
		}
	}
	// A broken source tree fails with the compiler's words and a hint.
	os.WriteFile(filepath.Join(src, "cmd/init/main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
	_, err = Build(Options{Board: lookup(t, "qemu-arm-virt"), Kernel: dir, Output: filepath.Join(t.TempDir(), "i"), SourceDir: src})
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") || !strings.Contains(err.Error(), "--init") {
		t.Errorf("broken init source: %v", err)
	}
}

// TestShippedInit: outside a source tree, the builder takes the init
// shipped for the board's architecture from InitDir; with none there, it
// says where it looked and how to fix it.
func TestShippedInit(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	notSource := t.TempDir()
	lib := t.TempDir()
	_, err := Build(Options{Board: b, Kernel: dir, Output: filepath.Join(t.TempDir(), "i"), SourceDir: notSource, InitDir: lib})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(lib, "init-amd64")) || !strings.Contains(err.Error(), "--init") {
		t.Fatalf("no shipped init, no source tree: %v", err)
	}
	init := standin(t, "amd64")
	data, _ := os.ReadFile(init)
	os.WriteFile(filepath.Join(lib, "init-amd64"), data, 0o755)
	var logged []string
	res, err := Build(Options{Board: b, Kernel: dir, Output: filepath.Join(t.TempDir(), "i"), Compression: "none", SourceDir: notSource, InitDir: lib,
		Log: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.InitBytes != int64(len(data)) || !strings.Contains(strings.Join(logged, "\n"), "shipped init") {
		t.Errorf("init %d bytes, shipped %d; log %q", res.InitBytes, len(data), logged)
	}
	// The shipped init of another architecture is refused, not used.
	os.WriteFile(filepath.Join(lib, "init-armv7"), data, 0o755)
	if _, err := Build(Options{Board: lookup(t, "qemu-arm-virt"), Kernel: kernelDir(t, "armmp"), Output: filepath.Join(t.TempDir(), "i"), SourceDir: notSource, InitDir: lib}); err == nil || !strings.Contains(err.Error(), "built for") {
		t.Errorf("an amd64 init shipped as init-armv7: %v", err)
	}
}

// TestInstalledKernel builds from a root with two installed kernels (a
// device's /), picking one by KernelVersion, as the package's kernel
// hooks do.
func TestInstalledKernel(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/modules"), 0o755)
	var versions []string
	for _, flavour := range []string{"amd64", "armmp"} {
		trees, err := kmod.FindTrees(kernelDir(t, flavour))
		if err != nil {
			t.Fatal(err)
		}
		v := filepath.Base(trees[0])
		versions = append(versions, v)
		if out, err := exec.Command("cp", "-al", trees[0], filepath.Join(root, "lib/modules", v)).CombinedOutput(); err != nil {
			t.Fatalf("cp -al: %v %s", err, out)
		}
	}
	b := lookup(t, "qemu-x86_64")
	out := filepath.Join(t.TempDir(), "i")
	if _, err := Build(Options{Board: b, Kernel: root, Output: out, InitBinary: standin(t, "amd64")}); err == nil || !strings.Contains(err.Error(), "several kernels") {
		t.Errorf("two kernels, no version: %v", err)
	}
	res, err := Build(Options{Board: b, Kernel: root, KernelVersion: versions[0], Output: out, InitBinary: standin(t, "amd64")})
	if err != nil || res.KernelVersion != versions[0] {
		t.Fatalf("KernelVersion %s: %v", versions[0], err)
	}
	// The compression follows /boot/config-VERSION: none there, gzip;
	// a kernel without CONFIG_RD_GZIP gets zstd and refuses gzip; one
	// without CONFIG_RD_ZSTD gets gzip (on amd64, where zstd comes
	// first) and refuses zstd.
	if res.Compression != "gzip" {
		t.Errorf("no /boot/config: compression %s, want gzip", res.Compression)
	}
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	cfg := filepath.Join(root, "boot", "config-"+versions[0])
	os.WriteFile(cfg, []byte("# CONFIG_RD_GZIP is not set\nCONFIG_RD_ZSTD=y\n"), 0o644)
	o := Options{Board: b, Kernel: root, KernelVersion: versions[0], Output: out, InitBinary: standin(t, "amd64")}
	if res, err := Build(o); err != nil || res.Compression != "zstd" {
		t.Errorf("kernel without RD_GZIP: %+v, %v", res, err)
	}
	o.Compression = "gzip"
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "cannot unpack a gzip initramfs") {
		t.Errorf("gzip for a kernel without RD_GZIP: %v", err)
	}
	os.WriteFile(cfg, []byte("CONFIG_RD_GZIP=y\n# CONFIG_RD_ZSTD is not set\n"), 0o644)
	o.Compression = ""
	if res, err := Build(o); err != nil || res.Compression != "gzip" {
		t.Errorf("amd64 kernel without RD_ZSTD: %+v, %v", res, err)
	}
	o.Compression = "zstd"
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "cannot unpack a zstd initramfs") {
		t.Errorf("zstd for a kernel without RD_ZSTD: %v", err)
	}
	if _, err := Build(Options{Board: b, Kernel: root, KernelVersion: "9.9.9-nope", Output: out, InitBinary: standin(t, "amd64")}); err == nil || !strings.Contains(err.Error(), "9.9.9-nope") {
		t.Errorf("a kernel that is not installed: %v", err)
	}
}

func TestGoBuildCommand(t *testing.T) {
	testenv.NeedTools(t, "go")
	for _, tc := range []struct {
		board string
		env   []string
	}{
		{"qemu-x86_64", []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOARM="}},
		{"sabrelite", []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=7"}},
	} {
		cmd, err := GoBuildCommand("/src", "./cmd/init", "/tmp/out", lookup(t, tc.board))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(cmd.Args, " "); got != "go build -trimpath -buildvcs=false -ldflags -s -w -buildid= -o /tmp/out ./cmd/init" {
			t.Errorf("command %q", got)
		}
		if cmd.Dir != "/src" || !reflect.DeepEqual(cmd.Env[len(cmd.Env)-4:], tc.env) {
			t.Errorf("%s: dir %q env %q", tc.board, cmd.Dir, cmd.Env[len(cmd.Env)-4:])
		}
	}
}

func TestArchiveOrder(t *testing.T) {
	a := newArchive(42)
	a.file("/lib/modules/v/kernel/x.ko", 0o644, []byte("x"))
	a.file("/lib-extra/y", 0o644, []byte("y"))
	a.dir("/dev")
	a.add(cpio.CharDev("/dev/console", 0o600, 5, 1))
	var b bytes.Buffer
	n, err := a.writeTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatal(err)
	}
	var names []string
	for _, r := range readArchive(t, b.Bytes()) {
		names = append(names, fmt.Sprintf("%s:%d", r.Name, r.Ino))
	}
	want := []string{"dev:1", "dev/console:2", "lib:3", "lib-extra:4", "lib-extra/y:5", "lib/modules:6", "lib/modules/v:7", "lib/modules/v/kernel:8", "lib/modules/v/kernel/x.ko:9"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
	if !bytes.HasSuffix(bytes.TrimRight(b.Bytes(), "\x00"), []byte("TRAILER!!!")) {
		t.Error("no trailer at the end")
	}
}

func TestShippedInitName(t *testing.T) {
	for board, want := range map[string]string{"qemu-x86_64": "init-amd64", "sabrelite": "init-armv7", "qemu-arm-virt": "init-armv7"} {
		if got := ShippedInitName(lookup(t, board)); got != want {
			t.Errorf("ShippedInitName(%s) = %q, want %q", board, got, want)
		}
	}
}

// TestRescueShell: a shell given with Shell lands at /bin/sh, executable;
// one the board cannot run is refused.
func TestRescueShell(t *testing.T) {
	dir := kernelDir(t, "amd64")
	b := lookup(t, "qemu-x86_64")
	shell := standin(t, "amd64") // any static amd64 program stands in
	out := filepath.Join(t.TempDir(), "initrd")
	res, err := Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), Compression: "none", Shell: shell})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	want, _ := os.ReadFile(shell)
	found := false
	for _, r := range readArchive(t, data) {
		if r.Name == "bin/sh" {
			found = true
			if r.Mode != cpio.S_IFREG|0o755 {
				t.Errorf("/bin/sh mode %o", r.Mode)
			}
		}
	}
	if !found || res.ShellSHA256 != sha256Hex(want) {
		t.Errorf("/bin/sh in the archive: %v; sha %q", found, res.ShellSHA256)
	}
	_, err = Build(Options{Board: b, Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), Shell: standin(t, "arm")})
	if err == nil || !strings.Contains(err.Error(), "the shell") || !strings.Contains(err.Error(), "needs") {
		t.Errorf("an ARM shell for an x86 board: %v", err)
	}
}

// TestSandboxAppArmor: the compiled profile lands where the init loads
// it from.
func TestSandboxAppArmor(t *testing.T) {
	testenv.NeedTools(t, "apparmor_parser")
	dir := kernelDir(t, "amd64")
	out := filepath.Join(t.TempDir(), "initrd")
	if _, err := Build(Options{Board: lookup(t, "qemu-x86_64"), Kernel: dir, Output: out, InitBinary: standin(t, "amd64"), Compression: "none", SandboxAppArmor: true}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	for _, r := range readArchive(t, data) {
		if "/"+r.Name == sandbox.CompiledPolicyPath {
			if r.FileSize == 0 {
				t.Error("the compiled profile is empty")
			}
			return
		}
	}
	t.Errorf("no %s in the archive", sandbox.CompiledPolicyPath)
}
