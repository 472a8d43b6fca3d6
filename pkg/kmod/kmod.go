// Package kmod handles Linux kernel modules on both sides of the
// initramfs.
//
// On the build host (pure Go, any OS): Tree indexes a module tree
// (lib/modules/VERSION under a package root, as `dpkg -x` leaves it),
// reads each module's .modinfo ELF section, and Resolve orders a list of
// modules for loading, dependencies and soft "pre:" dependencies first.
// Debian's kernel packages ship no modules.dep (depmod runs at install
// time), so nothing here reads it.
//
// In the initramfs: the builder writes the order with FormatOrder to
// OrderFile; the init reads it back with ParseOrder and loads each module
// with Load (finit_module, Linux only).
package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Suffixes are the file name endings of module files, plain first.
var Suffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// NormalizeName returns the kernel's name for a module: '-' becomes
// '_', as the kernel and modprobe treat both alike ("sdhci-esdhc-imx"
// is sdhci_esdhc_imx).
func NormalizeName(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// NameFromPath returns the module name of a module file:
// ".../crc32c-intel.ko.xz" is crc32c_intel. It returns "" when the file
// name has none of the Suffixes.
func NameFromPath(p string) string {
	base := path.Base(strings.ReplaceAll(p, "\\", "/"))
	for i := len(Suffixes) - 1; i >= 0; i-- {
		if s := Suffixes[i]; strings.HasSuffix(base, s) && len(base) > len(s) {
			return NormalizeName(strings.TrimSuffix(base, s))
		}
	}
	return ""
}

// PlainName returns the file name a module has once decompressed:
// "ext4.ko.xz" becomes "ext4.ko".
func PlainName(p string) string {
	for _, s := range Suffixes[1:] {
		if strings.HasSuffix(p, s) {
			return strings.TrimSuffix(p, s) + ".ko"
		}
	}
	return p
}

// ModInfo is what a module's .modinfo section says about it.
type ModInfo struct {
	// Name is the name= field (the kernel's name for the module).
	Name string
	// Depends are the modules that must be loaded first (depends=),
	// normalised.
	Depends []string
	// SoftPre and SoftPost are the soft dependencies (softdep=): module
	// names or aliases to load before and after, if some module
	// provides them.
	SoftPre, SoftPost []string
	// Aliases are the alias= patterns (fnmatch style) the module
	// answers to, e.g. "crypto-crc32c" or "pci:v00001AF4d*sv*sd*bc*sc*i*".
	Aliases []string
	// Vermagic is the kernel version string the module was built for.
	Vermagic string
	// Ignored lists softdep tokens outside any "pre:" or "post:" part,
	// which modprobe ignores too.
	Ignored []string
}

// ParseModInfo parses the contents of a .modinfo section: key=value
// strings, each ending in NUL, possibly padded with extra NULs.
func ParseModInfo(data []byte) (ModInfo, error) {
	var mi ModInfo
	for _, field := range bytes.Split(data, []byte{0}) {
		if len(field) == 0 {
			continue
		}
		key, value, ok := strings.Cut(string(field), "=")
		if !ok {
			return ModInfo{}, fmt.Errorf("modinfo field %q has no '='", field)
		}
		switch key {
		case "name":
			mi.Name = value
		case "depends":
			for _, d := range strings.Split(value, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, NormalizeName(d))
				}
			}
		case "softdep":
			pre, post, ignored := ParseSoftdep(value)
			mi.SoftPre = append(mi.SoftPre, pre...)
			mi.SoftPost = append(mi.SoftPost, post...)
			mi.Ignored = append(mi.Ignored, ignored...)
		case "alias":
			mi.Aliases = append(mi.Aliases, value)
		case "vermagic":
			mi.Vermagic = value
		}
	}
	return mi, nil
}

// ParseSoftdep splits a softdep value such as "pre: crc32c post: foo"
// into its parts. Tokens before the first "pre:" or "post:" are
// returned as ignored.
func ParseSoftdep(value string) (pre, post, ignored []string) {
	var cur *[]string
	for _, tok := range strings.Fields(value) {
		switch tok {
		case "pre:":
			cur = &pre
		case "post:":
			cur = &post
		default:
			if cur == nil {
				ignored = append(ignored, tok)
			} else {
				*cur = append(*cur, tok)
			}
		}
	}
	return pre, post, ignored
}

// decompressors read compressed module files, by file suffix (".xz",
// ".zst", ".gz"): each takes the compressed file and gives the module's
// plain bytes. See SetDecompressors.
var decompressors map[string]func(io.Reader) (io.ReadCloser, error)

// SetDecompressors makes ReadModule and ReadModInfo read module files
// whose names end in one of the map's suffixes (".xz") with its function.
// Package kmod carries none, so that the init, which leaves decompression
// to the kernel, links no decoder: the host's builder calls
// SetDecompressors(compressed.Decompressors) (package
// github.com/ofsroot/ofsroot/pkg/kmod/compressed: gzip, xz and zstd).
// Call it before reading any module.
func SetDecompressors(m map[string]func(io.Reader) (io.ReadCloser, error)) { decompressors = m }

// ErrCompressed is wrapped by ReadModule and ReadModInfo for a compressed
// module file whose compression no decompressor reads (SetDecompressors).
var ErrCompressed = errors.New("compressed module, and no decompressor for it in this program")

// Compressed says whether a module file name ends in one of the
// compressed Suffixes.
func Compressed(file string) bool {
	return PlainName(file) != file
}

// decompressor returns the decompressor of a compressed module file, nil
// if there is none.
func decompressor(file string) func(io.Reader) (io.ReadCloser, error) {
	return decompressors[path.Ext(file)]
}

// ReadModule returns the contents of a module file, decompressed if its
// name ends in .xz, .zst or .gz (see SetDecompressors; without one the
// error wraps ErrCompressed).
func ReadModule(file string) ([]byte, error) {
	if !Compressed(file) {
		return readFile(file, maxModuleFile)
	}
	dec := decompressor(file)
	if dec == nil {
		return nil, fmt.Errorf("%s: %w", file, ErrCompressed)
	}
	f, err := openFile(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := dec(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	defer z.Close()
	data, err := io.ReadAll(io.LimitReader(z, maxModuleFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > maxModuleFile {
		return nil, fmt.Errorf("%s: more than %d bytes decompressed: refused", file, maxModuleFile)
	}
	return data, nil
}

// ReadModInfo reads the .modinfo section of a module file (compressed or
// not: see ReadModule). A module without the section has an empty
// ModInfo. Of a plain module, only the ELF headers, the section names and
// .modinfo are read.
func ReadModInfo(file string) (ModInfo, error) {
	var data []byte
	if !Compressed(file) {
		f, err := openFile(file)
		if err != nil {
			return ModInfo{}, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return ModInfo{}, err
		}
		if data, err = ModInfoSection(f, fi.Size()); err != nil {
			return ModInfo{}, fmt.Errorf("%s: %w", file, err)
		}
	} else {
		mod, err := ReadModule(file)
		if err != nil {
			return ModInfo{}, err
		}
		if data, err = ModInfoSection(bytes.NewReader(mod), int64(len(mod))); err != nil {
			return ModInfo{}, fmt.Errorf("%s: %w", file, err)
		}
	}
	mi, err := ParseModInfo(data)
	if err != nil {
		return ModInfo{}, fmt.Errorf("%s: %w", file, err)
	}
	return mi, nil
}
