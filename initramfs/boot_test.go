package initramfs

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootStandin boots the real Debian kernels under QEMU (TCG) with
// initramfs images holding the stand-in init, which loads every module
// of modules.order with finit_module and says how each went. It proves
// that the kernel unpacks each compression and that the modules load in
// the order given.
func TestBootStandin(t *testing.T) {
	for _, tc := range []struct {
		board, flavour, goarch, qemu, console string
		compressions                          []string
		args                                  []string
	}{
		// -cpu max: QEMU's default x86 model has no SSSE3, so the
		// board's sha256-ssse3 would fail with ENODEV (no such
		// hardware) instead of loading.
		{"qemu-x86_64", "amd64", "amd64", "qemu-system-x86_64", "ttyS0", Compressions, []string{"-accel", "tcg", "-cpu", "max"}},
		{"qemu-arm-virt", "armmp", "arm", "qemu-system-arm", "ttyAMA0", []string{"xz", "zstd"}, []string{"-M", "virt"}},
	} {
		for _, method := range tc.compressions {
			t.Run(tc.board+"/"+method, func(t *testing.T) {
				testenv.NeedTools(t, tc.qemu)
				dir := kernelDir(t, tc.flavour)
				kernels, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
				if len(kernels) != 1 {
					t.Fatalf("kernel images in %s/boot: %q", dir, kernels)
				}
				b := lookup(t, tc.board)
				initrd := filepath.Join(t.TempDir(), "initrd")
				res, err := Build(Options{Board: b, Kernel: dir, Output: initrd, InitBinary: standin(t, tc.goarch), Compression: method})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer cancel()
				args := append(append([]string{}, tc.args...), "-m", "512", "-nographic", "-net", "none", "-no-reboot",
					"-kernel", kernels[0], "-initrd", initrd, "-append", "console="+tc.console+" panic=-1 quiet")
				cmd := exec.CommandContext(ctx, tc.qemu, args...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				start := time.Now()
				err = cmd.Run()
				log := out.String()
				if err != nil || ctx.Err() != nil {
					t.Fatalf("%s: %v (timeout: %v)\n%s", tc.qemu, err, ctx.Err(), log)
				}
				t.Logf("booted in %v", time.Since(start).Round(100*time.Millisecond))
				for _, bad := range []string{"Kernel panic", "FAILED", "no module order", "bad module order", "Initramfs unpacking failed", "junk"} {
					if strings.Contains(log, bad) {
						t.Errorf("console says %q:\n%s", bad, log)
					}
				}
				for _, m := range res.ModuleNames {
					if !strings.Contains(log, "OFSROOT-STANDIN: module "+m+" loaded") &&
						!strings.Contains(log, "OFSROOT-STANDIN: module "+m+" present") {
						t.Errorf("module %s not loaded:\n%s", m, log)
					}
				}
				if !strings.Contains(log, "OFSROOT-STANDIN: done") {
					t.Errorf("the stand-in init did not finish:\n%s", log)
				}
			})
		}
	}
}
