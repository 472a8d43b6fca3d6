package zram

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSizes(t *testing.T) {
	const M = 1 << 20
	for _, c := range []struct {
		name         string
		size, memCap uint64
		capped       bool
		disk, limit  uint64
		cut          bool
	}{
		{"under the cap", 100 * M, 400 * M, true, 100 * M, 400 * M, false},
		{"over: cut below the cap by 1/32", 500 * M, 320 * M, true, 310 * M, 320 * M, true},
		{"equal to the cap is cut too", 320 * M, 320 * M, true, 310 * M, 320 * M, true},
		{"pages", 100*M + 123, 400*M + 4095, true, 100 * M, 400 * M, false},
		{"no cap", 900 * M, 0, false, 900 * M, 0, false},
		{"floor cap", 100 * M, 4096, true, 0, 4096, true},
	} {
		disk, limit, cut := Sizes(c.size, c.memCap, c.capped)
		if disk != c.disk || limit != c.limit || cut != c.cut {
			t.Errorf("%s: Sizes(%d, %d, %v) = %d, %d, %v; want %d, %d, %v", c.name, c.size, c.memCap, c.capped, disk, limit, cut, c.disk, c.limit, c.cut)
		}
		if c.capped && disk+limit/Margin > limit+Page {
			t.Errorf("%s: disk %d leaves less than 1/%d of the cap %d", c.name, disk, Margin, limit)
		}
	}
}

func TestParseMMStat(t *testing.T) {
	// Linux 6.1 (9 fields), 4.19 (8), an old 7-field one.
	m, err := ParseMMStat(" 9400320  8311481  8388608  8388608  8409088      255        0     2029     2029\n")
	if err != nil {
		t.Fatal(err)
	}
	want := MMStat{OrigDataSize: 9400320, ComprDataSize: 8311481, MemUsedTotal: 8388608, MemLimit: 8388608, MemUsedMax: 8409088, SamePages: 255, HugePages: 2029}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if r := m.Ratio(); r < 1.13 || r > 1.14 {
		t.Errorf("ratio %v", r)
	}
	if m, err := ParseMMStat("4096 1024 8192 0 8192 0 0"); err != nil || m.Ratio() != 4 || m.MemLimit != 0 {
		t.Errorf("7 fields: %+v %v", m, err)
	}
	if (MMStat{}).Ratio() != 0 {
		t.Errorf("empty device has a ratio")
	}
	for _, bad := range []string{"", "1 2 3 4", "1 2 x 4 5", "1 2 3 4 -5"} {
		if _, err := ParseMMStat(bad); err == nil {
			t.Errorf("ParseMMStat(%q) took it", bad)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	offered, cur := ParseAlgorithms("lzo [lzo-rle] lz4 lz4hc zstd\n")
	if strings.Join(offered, ",") != "lzo,lzo-rle,lz4,lz4hc,zstd" || cur != "lzo-rle" {
		t.Fatalf("offered %q current %q", offered, cur)
	}
	for _, c := range []struct{ asked, alg, problem string }{
		{"", "lzo-rle", ""},
		{"zstd", "zstd", ""},
		{"lz4", "lz4", ""},
		{"deflate", "lzo-rle", "offers lzo, lzo-rle, lz4, lz4hc, zstd, not deflate"},
	} {
		alg, problem := ChooseAlgorithm(c.asked, offered, cur)
		if alg != c.alg || (c.problem == "") != (problem == "") || !strings.Contains(problem, c.problem) {
			t.Errorf("ChooseAlgorithm(%q) = %q, %q; want %q, %q", c.asked, alg, problem, c.alg, c.problem)
		}
	}
}

func TestForSource(t *testing.T) {
	for src, want := range map[string]string{"/dev/zram0": "/sys/block/zram0", "/dev/zram12": "/sys/block/zram12", "/dev/zram": "", "/dev/zramx": "", "tmpfs-root": "", "/dev/vda": "", "zram0": ""} {
		d, ok := ForSource("/sys", src)
		if ok != (want != "") || d.Sys != want {
			t.Errorf("ForSource(%q) = %+v, %v; want %q", src, d, ok, want)
		}
	}
}

// TestDeviceFiles runs Device on a folder standing in for /sys/block/zram0.
func TestDeviceFiles(t *testing.T) {
	sys := t.TempDir()
	d := At(sys, "/dev", 0)
	if d.Exists() {
		t.Fatal("exists before it is made")
	}
	os.MkdirAll(d.Sys, 0o755)
	for name, v := range map[string]string{"disksize": "268435456\n", "comp_algorithm": "lzo [lzo-rle] lz4\n", "mm_stat": "4096000 1024000 1200000 300000000 1300000 10 0 0 0\n"} {
		os.WriteFile(filepath.Join(d.Sys, name), []byte(v), 0o644)
	}
	st, err := d.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Device != "/dev/zram0" || st.Algorithm != "lzo-rle" || st.DisksizeBytes != 256<<20 || st.Ratio != 4 || st.MemPercent != 0.4 || st.MemLimitBytes != 300000000 {
		t.Errorf("stat %+v", st)
	}
	os.Remove(filepath.Join(d.Sys, "mm_stat"))
	_, err = d.Stat()
	var ae *AttrError
	if !errors.As(err, &ae) || !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "mm_stat") {
		t.Errorf("missing mm_stat: %v", err)
	}
}
