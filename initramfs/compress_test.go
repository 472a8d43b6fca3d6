package initramfs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/kernelpkg"
)

// Every case of the choice: the default follows the kernel's
// configuration, an asked compression wins when the kernel unpacks it,
// and one it cannot unpack is refused, asked or not.
func TestChooseCompression(t *testing.T) {
	debian := kernelpkg.Config{"RD_GZIP": "y", "RD_XZ": "y", "RD_ZSTD": "y"}
	old := kernelpkg.Config{"RD_GZIP": "y", "RD_XZ": "y"} // before Linux 5.9, or zstd left out
	noGzip := kernelpkg.Config{"RD_ZSTD": "y", "RD_XZ": "y", "RD_GZIP": "m"}
	xzOnly := kernelpkg.Config{"RD_XZ": "y"}
	lzoOnly := kernelpkg.Config{"RD_LZO": "y"}
	missing := &fs.PathError{Op: "open", Path: "boot/config-6.1.0-1-amd64", Err: fs.ErrNotExist}
	for _, tc := range []struct {
		name   string
		arch   string
		asked  string
		cfg    kernelpkg.Config
		cfgErr error
		want   string
		errHas []string
	}{
		{"default, Debian's kernel", "arm", "", debian, nil, "gzip", nil},
		{"default, Debian's kernel, amd64", "amd64", "", debian, nil, "zstd", nil},
		{"default, kernel without RD_ZSTD, amd64", "amd64", "", old, nil, "gzip", nil},
		{"default, no configuration, amd64", "amd64", "", nil, missing, "gzip", nil},
		{"asked gzip, amd64", "amd64", "gzip", debian, nil, "gzip", nil},
		{"default, kernel unpacks none of them, amd64", "amd64", "", lzoOnly, nil, "", []string{"unpacks none of zstd, gzip, xz"}},
		{"default, kernel without RD_ZSTD", "arm", "", old, nil, "gzip", nil},
		{"default, kernel without RD_GZIP", "arm", "", noGzip, nil, "zstd", nil},
		{"default, kernel with only RD_XZ", "arm", "", xzOnly, nil, "xz", nil},
		{"asked gzip, kernel without RD_GZIP", "arm", "gzip", noGzip, nil, "", []string{"cannot unpack a gzip initramfs", "CONFIG_RD_GZIP", "xz, zstd, none"}},
		{"default, no configuration", "arm", "", nil, missing, "gzip", nil},
		{"asked gzip", "arm", "gzip", debian, nil, "gzip", nil},
		{"asked xz", "arm", "xz", debian, nil, "xz", nil},
		{"asked none", "arm", "none", xzOnly, nil, "none", nil},
		{"asked zstd, no configuration", "arm", "zstd", nil, missing, "zstd", nil},
		{"asked zstd, kernel cannot", "arm", "zstd", old, nil, "", []string{"cannot unpack a zstd initramfs", "CONFIG_RD_ZSTD", "gzip, xz, none", "--compress"}},
		{"default, kernel unpacks none of them", "arm", "", lzoOnly, nil, "", []string{"unpacks none of gzip, zstd, xz", "it unpacks: none"}},
		{"configuration unreadable", "arm", "", nil, errors.New("line 3: junk"), "", []string{"line 3: junk"}},
	} {
		got, err := chooseCompression(tc.asked, tc.arch, "6.1.0-1-amd64", tc.cfg, tc.cfgErr)
		if got != tc.want || (err != nil) != (tc.errHas != nil) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
			continue
		}
		for _, s := range tc.errHas {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, s)
			}
		}
	}
}
