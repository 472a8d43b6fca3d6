package main

import (
	"github.com/ofsroot/ofsroot/pkg/units"

	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/debcache/debcachetest"
)

func runInitramfsCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := program.Main(append([]string{"initramfs"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestInitramfsUsage(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	out := filepath.Join(tmp, "initrd")
	for _, tc := range []struct {
		name   string
		args   []string
		env    string
		code   int
		stderr []string
	}{
		{"help", []string{"--help"}, "", 0, []string{"Usage: ofsroot initramfs --board NAME (--kernel DEB|DIR | --kernel-version VERSION) --output FILE", "-without-module NAME", "gzip, xz, zstd, none"}},
		{"nothing", nil, "", 2, []string{"missing --board, --kernel, --output"}},
		{"unknown flag", []string{"--bogus"}, "", 2, []string{"flag provided but not defined: -bogus"}},
		{"arguments", []string{"--board", "sabrelite", "--kernel", empty, "--output", out, "extra"}, "", 2, []string{`unexpected arguments ["extra"]`}},
		{"unknown board", []string{"--board", "nope", "--kernel", empty, "--output", out}, "", 2, []string{`no board "nope"`, "qemu-arm-virt, qemu-x86_64, sabrelite"}},
		{"unknown compression", []string{"--board", "sabrelite", "--kernel", empty, "--output", out, "--compress", "lzo"}, "", 2, []string{`--compress "lzo"`, "gzip, xz, zstd, none"}},
		{"missing kernel", []string{"--board", "sabrelite", "--kernel", filepath.Join(tmp, "nope.deb"), "--output", out}, "", 2, []string{"nope.deb: no such file or directory", "linux-image"}},
		{"missing init", []string{"--board", "sabrelite", "--kernel", empty, "--output", out, "--init", filepath.Join(tmp, "init")}, "", 2, []string{"--init", "no such file"}},
		{"empty module name", []string{"--without-module", ""}, "", 2, []string{"empty module name"}},
		{"bad epoch", []string{"--board", "sabrelite", "--kernel", empty, "--output", out}, "yesterday", 2, []string{`SOURCE_DATE_EPOCH="yesterday"`}},
		{"kernel folder without modules", []string{"--board", "sabrelite", "--kernel", empty, "--output", out}, "", 1, []string{"has no lib/modules/VERSION", "dpkg -x"}},
		{"installed kernel not there", []string{"--board", "sabrelite", "--kernel", empty, "--kernel-version", "9.9.9-x", "--output", out}, "", 1, []string{"lib/modules/VERSION"}},
		{"kernel version alone means /", []string{"--board", "sabrelite", "--kernel-version", "9.9.9-x"}, "", 2, []string{"missing --output"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			code, stdout, stderr := runInitramfsCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run wrote %s", out)
	}
}

// TestInitramfsBuild runs the command on the real kernel package with a
// tiny static stand-in init.
func TestInitramfsBuild(t *testing.T) {
	k := debcachetest.Kernel(t, "amd64")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "init.go")
	os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644)
	initBin := filepath.Join(tmp, "init")
	cmd := exec.Command("go", "build", "-o", initBin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a stand-in init: %v\n%s", err, out)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	t.Setenv("OFSROOT_CACHE", t.TempDir()) // the .deb is unpacked once, by the first run
	sha := regexp.MustCompile(`sha256    ([0-9a-f]{64})`)
	var sums []string
	for i := range 2 {
		out := filepath.Join(tmp, "initrd"+string(rune('a'+i)))
		code, stdout, stderr := runInitramfsCLI("--board", "qemu-x86_64", "--kernel", k.Deb, "--output", out,
			"--init", initBin, "--compress", "zstd", "--without-module", "overlay")
		if code != 0 {
			t.Fatalf("exit code %d\n%s", code, stderr)
		}
		for _, want := range []string{"wrote " + out + ": ", " zstd (cpio ", "kernel    " + k.Version,
			"modules   13, ", "in load order: sha256_ssse3 crc32c_generic virtio_ring", " ext4 squashfs\n", "left out  overlay"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
		if unpacked := strings.Contains(stderr, "unpacking "+k.Deb+" into "); unpacked != (i == 0) {
			t.Errorf("run %d: unpacking said %v, want %v (once, then from the cache); stderr: %q", i+1, unpacked, i == 0, stderr)
		}
		m := sha.FindStringSubmatch(stdout)
		if m == nil {
			t.Fatalf("no sha256 in the summary:\n%s", stdout)
		}
		sums = append(sums, m[1])
		if i == 0 {
			t.Logf("summary:\n%s", stdout)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two runs differ: %s %s", sums[0], sums[1])
	}
}

// TestInitramfsExtraModule: --module adds a module, with what it needs,
// to the board's list; an unknown one is refused by name.
func TestInitramfsExtraModule(t *testing.T) {
	k := debcachetest.Kernel(t, "amd64")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "init.go")
	os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644)
	initBin := filepath.Join(tmp, "init")
	cmd := exec.Command("go", "build", "-o", initBin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a stand-in init: %v\n%s", err, out)
	}
	out := filepath.Join(tmp, "initrd")
	code, stdout, stderr := runInitramfsCLI("--board", "qemu-x86_64", "--kernel", k.Deb, "--output", out, "--init", initBin, "--module", "virtio_scsi")
	if code != 0 || !strings.Contains(stdout, " virtio_scsi") {
		t.Errorf("--module virtio_scsi: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runInitramfsCLI("--board", "qemu-x86_64", "--kernel", k.Deb, "--output", out, "--init", initBin, "--module", "nosuchmod")
	if code != 1 || !strings.Contains(stderr, `"nosuchmod"`) {
		t.Errorf("--module nosuchmod: exit %d\n%s", code, stderr)
	}
}

func TestInitramfsBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 2639982: "2.5 MiB", 3 << 30: "3.0 GiB"} {
		if got := units.Bytes(n); got != want {
			t.Errorf("units.Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
