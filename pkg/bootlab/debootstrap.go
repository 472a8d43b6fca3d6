package bootlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/debcache"
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
// include adds packages (debootstrap --include), such as systemd-sysv for
// a root that boots systemd; each set of packages is its own cached root,
// SUITE-ARCH-minbase+PKG,PKG (sorted), so callers never see each other's.
//
// Side effects: runs debootstrap as root (it must be installed), writes
// under cacheDir; holds an flock on cacheDir/.lock meanwhile.
func Debootstrap(cacheDir, suite, arch string, include ...string) (string, error) {
	name := suite + "-" + arch + "-minbase"
	args := []string{"--variant=minbase", "--arch=" + arch}
	if len(include) > 0 {
		pkgs := append([]string(nil), include...)
		sort.Strings(pkgs)
		name += "+" + strings.Join(pkgs, ",")
		args = append(args, "--include="+strings.Join(pkgs, ","))
	}
	dir := filepath.Join(cacheDir, "debootstrap", name)
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
	args = append(args, suite, tmp, DebianMirror)
	if o, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap %s: %v\n%s", strings.Join(args, " "), err, debootstrapTail(string(o), 20))
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
