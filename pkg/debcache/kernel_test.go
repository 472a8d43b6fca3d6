package debcache

import (
	"testing"

	"github.com/ofsroot/ofsroot/board"
)

func TestParseKernelDepends(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
	}{
		{"amd64", "linux-image-amd64\n  Depends: linux-image-6.1.0-50-amd64\n", "linux-image-6.1.0-50-amd64"},
		{"foreign", "linux-image-armmp:armhf\n  Depends: linux-image-6.1.0-50-armmp:armhf\n", "linux-image-6.1.0-50-armmp"},
		{"other deps first", "linux-image-arm64\n  Depends: initramfs-tools\n  Depends: linux-image-6.12.9-arm64\n", "linux-image-6.12.9-arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKernelDepends(tc.out)
			if err != nil || got != tc.want {
				t.Errorf("parseKernelDepends = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := parseKernelDepends("linux-image-amd64\n  Depends: <linux-image-virtual>\n"); err == nil {
		t.Error("no versioned kernel: want an error")
	}
}

func TestMetaPackage(t *testing.T) {
	for _, name := range board.Names() {
		b, err := board.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		got := metaPackage(b, "amd64")
		want := "linux-image-" + b.KernelFlavour
		if b.DebianArch != "amd64" {
			want += ":" + b.DebianArch
		}
		if got != want {
			t.Errorf("%s: metaPackage = %q, want %q", name, got, want)
		}
	}
}
