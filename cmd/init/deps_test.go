package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoBlockingEntropy: nothing linked into the init may read
// crypto/rand. It reads getrandom(2), which blocks until the kernel's
// random pool is initialised; PID 1 reaching it early in the boot waits
// for that: a protected boot in QEMU stood 1.03 s at its fstab rewrite
// (atomicfile's temporary name, since fixed) until the kernel said
// "random: crng init done", and a board without a hardware generator
// can wait far longer. Names that need not be secret come from
// math/rand/v2, which the runtime seeds from the kernel at exec without
// waiting.
func TestNoBlockingEntropy(t *testing.T) {
	for _, goarch := range []string{"amd64", "arm"} {
		cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list (%s): %v\n%s", goarch, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			pkg, imports, _ := strings.Cut(line, ": ")
			for _, imp := range strings.Fields(imports) {
				if imp == "crypto/rand" && !strings.HasPrefix(pkg, "crypto/") {
					t.Errorf("%s: %s imports crypto/rand, which blocks until the kernel's random pool is ready", goarch, pkg)
				}
			}
		}
	}
}
