package kernelpkg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_RD_GZIP=y\n# CONFIG_RD_LZO is not set\nCONFIG_RD_ZSTD=y\nCONFIG_EXT4_FS=m\nCONFIG_LOCALVERSION=\"\"\nCONFIG_NR_CPUS=512\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	for opt, want := range map[string]bool{"RD_GZIP": true, "RD_ZSTD": true, "RD_LZO": false, "EXT4_FS": false, "RD_XZ": false} {
		if c.Has(opt) != want {
			t.Errorf("Has(%s) = %v, want %v", opt, !want, want)
		}
	}
	if c["EXT4_FS"] != "m" || c["LOCALVERSION"] != `""` || c["NR_CPUS"] != "512" {
		t.Errorf("values: %v", c)
	}
	for _, bad := range []string{"RD_GZIP=y\n", "CONFIG_=y\n", "CONFIG_X\n"} {
		if _, err := ParseConfig(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestReadConfig(t *testing.T) {
	root := t.TempDir()
	if _, err := ReadConfig(root, "6.1.0-1-amd64"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no config: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(ConfigFile(root, "6.1.0-1-amd64"), []byte("CONFIG_RD_ZSTD=y\n"), 0o644)
	if c, err := ReadConfig(root, "6.1.0-1-amd64"); err != nil || !c.Has("RD_ZSTD") {
		t.Errorf("config: %v %v", c, err)
	}
}

// The Debian kernels the lab uses: both unpack gzip, xz and zstd.
func TestReadConfigDebian(t *testing.T) {
	cache := os.Getenv("OFSROOT_CACHE")
	if cache == "" {
		cache = "../../.cache"
	}
	cfgs, _ := filepath.Glob(filepath.Join(cache, "linux-image-*", "boot", "config-*"))
	if len(cfgs) == 0 {
		t.Skipf("no unpacked Debian kernel in %s (OFSROOT_CACHE; the boot tests fetch them)", cache)
	}
	for _, p := range cfgs {
		root := filepath.Dir(filepath.Dir(p))
		c, err := ReadConfig(root, strings.TrimPrefix(filepath.Base(p), "config-"))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Has("RD_GZIP") || !c.Has("RD_ZSTD") || !c.Has("RD_XZ") || len(c) < 1000 {
			t.Errorf("%s: %d options, RD_GZIP %q RD_XZ %q RD_ZSTD %q", p, len(c), c["RD_GZIP"], c["RD_XZ"], c["RD_ZSTD"])
		}
	}
}
