package bootlab

import (
	"github.com/ofsroot/ofsroot/pkg/debcache"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DebianMirror is where debootstrap fetches packages.
const DebianMirror = "http://deb.debian.org/debian"

// Debootstrap returns a Debian root made by `debootstrap
// --variant=minbase SUITE` for the host's architecture arch (amd64 here:
// a foreign one would need qemu-user for the second stage), kept under
// cacheDir/debootstrap/SUITE-ARCH-minbase and reused when complete (a
// SUITE-ARCH-minbase.done file marks it). About 200 MB and 30 s with a
// good connection to the mirror.
//
// Side effects: runs debootstrap as root (it must be installed), writes
// under cacheDir; holds an flock on cacheDir/.lock meanwhile.
func Debootstrap(cacheDir, suite, arch string) (string, error) {
	dir := filepath.Join(cacheDir, "debootstrap", suite+"-"+arch+"-minbase")
	done := dir + ".done"
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap is not installed (apt-get install debootstrap)")
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("debootstrap needs root")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := debcache.Lock(cacheDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return dir, nil // made while we waited
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.Command("debootstrap", "--variant=minbase", "--arch="+arch, suite, tmp, DebianMirror)
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap --variant=minbase --arch=%s %s %s: %v\n%s", arch, suite, tmp, err, debootstrapTail(string(o), 20))
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func debootstrapTail(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}
