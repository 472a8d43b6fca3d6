package cmdline

import (
	"strings"
	"testing"
)

func TestUpperWords(t *testing.T) {
	for _, tc := range []struct {
		line  string
		want  Upper
		reset bool
		warn  string // a word the warning names, "" for none
	}{
		{"", Upper{Dir: "ofsroot"}, false, ""},
		{"ofs-upper=ram", Upper{Word: "ram", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=TMPFS", Upper{Word: "TMPFS", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=zram", Upper{Kind: UpperZram, Word: "zram", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=zram:zstd", Upper{Kind: UpperZram, Word: "zram:zstd", ZramAlgorithm: "zstd", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=zram:LZO-RLE", Upper{Kind: UpperZram, Word: "zram:LZO-RLE", ZramAlgorithm: "lzo-rle", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=zram:", Upper{Dir: "ofsroot"}, false, "ofs-upper"},
		{"ofs-upper=zram:a/b", Upper{Dir: "ofsroot"}, false, "ofs-upper"},
		{"ofs-upper=LABEL=data", Upper{Kind: UpperDevice, Word: "LABEL=data", Device: "LABEL=data", Dir: "ofsroot"}, false, ""},
		{"ofs-upper=PARTUUID=1234abcd-03 ofs-upper-dir=/layers/a/", Upper{Kind: UpperDevice, Word: "PARTUUID=1234abcd-03", Device: "PARTUUID=1234abcd-03", Dir: "layers/a"}, false, ""},
		{"ofs-upper-dir=x ofs-upper=/dev/mmcblk0p3", Upper{Kind: UpperDevice, Word: "/dev/mmcblk0p3", Device: "/dev/mmcblk0p3", Dir: "x"}, false, ""},
		{"ofs-upper=LABEL=", Upper{Dir: "ofsroot"}, false, "ofs-upper"},
		{"ofs-upper=sdcard", Upper{Dir: "ofsroot"}, false, "ofs-upper"},
		{"ofs-upper=LABEL=data ofs-upper-dir=../etc", Upper{Kind: UpperDevice, Word: "LABEL=data", Device: "LABEL=data", Dir: "ofsroot"}, false, "ofs-upper-dir"},
		{"ofs-upper-dir=/", Upper{Dir: "ofsroot"}, false, "ofs-upper-dir"},
		{"ofs-upper-dir=a/../..", Upper{Dir: "ofsroot"}, false, "ofs-upper-dir"},
		{"ofs-reset", Upper{Dir: "ofsroot"}, true, ""},
		{"ofs-reset=1", Upper{Dir: "ofsroot"}, true, ""},
		{"ofs-reset=1 ofs-reset=no", Upper{Dir: "ofsroot"}, false, ""},
		{"ofs-reset=maybe", Upper{Dir: "ofsroot"}, false, "ofs-reset"},
	} {
		c, warns := Parse(tc.line)
		if c.Upper != tc.want || c.UpperReset != tc.reset {
			t.Errorf("%q: upper %+v reset %v, want %+v reset %v", tc.line, c.Upper, c.UpperReset, tc.want, tc.reset)
		}
		switch {
		case tc.warn == "" && len(warns) > 0:
			t.Errorf("%q: unexpected warnings %v", tc.line, warns)
		case tc.warn != "" && (len(warns) != 1 || warns[0].Word != tc.warn):
			t.Errorf("%q: warnings %v, want one naming %s", tc.line, warns, tc.warn)
		}
		// Nothing here changes the protection word.
		if c.Overlay != OverlayOff {
			t.Errorf("%q: overlay %v", tc.line, c.Overlay)
		}
	}
}

// checkUpper is the fuzzer's invariant for the writable layer's words.
func checkUpper(t *testing.T, c Config) {
	u := c.Upper
	switch u.Kind {
	case UpperRAM:
		if u.Device != "" || u.ZramAlgorithm != "" {
			t.Fatalf("ram layer with device or algorithm: %+v", u)
		}
	case UpperZram:
		if u.Device != "" || (u.ZramAlgorithm != "" && !validAlgorithm(u.ZramAlgorithm)) {
			t.Fatalf("zram layer: %+v", u)
		}
	case UpperDevice:
		if u.Device == "" {
			t.Fatalf("device layer without a device: %+v", u)
		}
	default:
		t.Fatalf("unknown layer kind %d", u.Kind)
	}
	if u.Dir == "" || strings.HasPrefix(u.Dir, "/") || u.Dir == ".." || strings.HasPrefix(u.Dir, "../") || strings.Contains(u.Dir, "/../") {
		t.Fatalf("layer folder %q escapes its filesystem", u.Dir)
	}
}
