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
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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

// ReadModule returns the contents of a module file, decompressed if its
// name ends in .xz, .zst or .gz.
func ReadModule(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(file, ".xz"):
		z, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		r = z
	case strings.HasSuffix(file, ".zst"):
		z, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		defer z.Close()
		r = z
	case strings.HasSuffix(file, ".gz"):
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		defer z.Close()
		r = z
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, nil
}

// ReadModInfo reads the .modinfo section of a module file (compressed or
// not). A module without the section has an empty ModInfo.
func ReadModInfo(file string) (ModInfo, error) {
	var ef *elf.File
	if strings.HasSuffix(file, ".ko") {
		// Plain modules: read only the headers and the one section.
		f, err := elf.Open(file)
		if err != nil {
			return ModInfo{}, fmt.Errorf("%s: %w", file, err)
		}
		defer f.Close()
		ef = f
	} else {
		data, err := ReadModule(file)
		if err != nil {
			return ModInfo{}, err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return ModInfo{}, fmt.Errorf("%s: %w", file, err)
		}
		ef = f
	}
	sec := ef.Section(".modinfo")
	if sec == nil {
		return ModInfo{}, nil
	}
	data, err := sec.Data()
	if err != nil {
		return ModInfo{}, fmt.Errorf("%s: .modinfo: %w", file, err)
	}
	mi, err := ParseModInfo(data)
	if err != nil {
		return ModInfo{}, fmt.Errorf("%s: %w", file, err)
	}
	return mi, nil
}
