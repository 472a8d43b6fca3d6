package cmdline

import (
	"path"
	"strings"
)

// UpperKind is where the writable layer of a protected root lives
// (ofs-upper=).
type UpperKind int

const (
	// UpperRAM is a tmpfs sized by ofs-size (the default).
	UpperRAM UpperKind = iota
	// UpperZram is a compressed RAM disk: a zram device whose RAM use is
	// capped, with a filesystem made at boot (ofs-upper=zram[:ALGORITHM]).
	UpperZram
	// UpperDevice is a filesystem on a partition, so that changes
	// survive reboots while the real root stays read-only
	// (ofs-upper=LABEL=...|UUID=...|PARTUUID=...|PARTLABEL=...|/dev/...).
	UpperDevice
)

func (k UpperKind) String() string {
	switch k {
	case UpperZram:
		return "zram"
	case UpperDevice:
		return "device"
	}
	return "ram"
}

// DefaultUpperDir is the folder on a persistent layer's filesystem that
// holds its upper/ and work/ folders (ofs-upper-dir=).
const DefaultUpperDir = "ofsroot"

// Upper is the writable layer the command line asks for.
type Upper struct {
	Kind UpperKind
	// Word is ofs-upper='s value as written ("" when absent).
	Word string
	// ZramAlgorithm is the compressor of a zram layer (ofs-upper=zram:zstd);
	// "" lets the init choose among what the kernel offers.
	ZramAlgorithm string
	// Device is a persistent layer's device, in any form root= takes
	// (blockdev.Resolve).
	Device string
	// Dir is the folder on the device's filesystem, relative and clean
	// (ofs-upper-dir=; DefaultUpperDir when absent).
	Dir string
}

func (u Upper) String() string {
	switch u.Kind {
	case UpperZram:
		if u.ZramAlgorithm != "" {
			return "zram:" + u.ZramAlgorithm
		}
		return "zram"
	case UpperDevice:
		return u.Device + " (folder " + u.Dir + ")"
	}
	return "ram"
}

// devicePrefixes are the forms of a block device spec ofs-upper= takes.
var devicePrefixes = []string{"LABEL=", "UUID=", "PARTUUID=", "PARTLABEL=", "/dev/"}

// parseUpper reads ofs-upper='s value; problem says why a value that is
// none of ram/tmpfs, zram[:ALGORITHM] or a device spec cannot be used.
func parseUpper(val string) (u Upper, problem string) {
	u = Upper{Word: val, Dir: DefaultUpperDir}
	lower := strings.ToLower(val)
	switch {
	case lower == "ram" || lower == "tmpfs":
		return u, ""
	case lower == "zram":
		u.Kind = UpperZram
		return u, ""
	case strings.HasPrefix(lower, "zram:"):
		alg := lower[len("zram:"):]
		if !validAlgorithm(alg) {
			return Upper{Dir: DefaultUpperDir}, "not a compressor name (letters, digits, '-', up to 32)"
		}
		u.Kind, u.ZramAlgorithm = UpperZram, alg
		return u, ""
	}
	for _, p := range devicePrefixes {
		if strings.HasPrefix(val, p) && len(val) > len(p) {
			u.Kind, u.Device = UpperDevice, val
			return u, ""
		}
	}
	return Upper{Dir: DefaultUpperDir}, "not one of ram, zram, zram:ALGORITHM, LABEL=, UUID=, PARTUUID=, PARTLABEL= or /dev/NAME"
}

// parseUpperDir reads ofs-upper-dir=: a relative folder without "..".
func parseUpperDir(val string) (string, bool) {
	clean := path.Clean(strings.Trim(val, "/"))
	if val == "" || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || len(clean) > 255 {
		return "", false
	}
	for _, r := range clean {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return clean, true
}

func validAlgorithm(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
