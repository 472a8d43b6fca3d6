package debcache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ofsroot/ofsroot/board"
)

// Package makes sure cacheDir holds Debian package pkg for arch as a
// .deb and unpacked, as fetchDeb, taking the cache lock: want is a path
// inside the unpacked folder that proves the unpack complete. It returns
// the .deb and the folder (the .deb's path without ".deb").
//
// Side effects: files under cacheDir; runs apt-get and dpkg; holds
// cacheDir/.lock.
func Package(cacheDir, pkg, arch, want string) (deb, dir string, err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", err
	}
	cacheDir, err = filepath.Abs(cacheDir)
	if err != nil {
		return "", "", err
	}
	unlock, err := Lock(cacheDir)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	return fetchDeb(cacheDir, pkg, arch, "", want)
}

// fetchDeb makes sure cacheDir holds Debian package pkg for arch as a
// .deb (apt-get download) and unpacked (dpkg -x) into dir, or, when dir
// is "", beside the .deb without its suffix. want, a path inside the
// unpacked folder, proves an unpack complete. The caller holds the cache
// lock.
func fetchDeb(cacheDir, pkg, arch, dir, want string) (deb, unpacked string, err error) {
	deb = findDeb(cacheDir, pkg, arch)
	if deb == "" {
		hostArch, err := hostDebianArch()
		if err != nil {
			return "", "", err
		}
		qualified := pkg
		if arch != hostArch {
			qualified += ":" + arch
		}
		// apt-get download writes into the working directory. As root
		// it warns that the _apt user cannot write there; harmless.
		cmd := exec.Command("apt-get", "download", "-q", qualified)
		cmd.Dir = cacheDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("apt-get download %s: %v\n%s(run scripts/setup-host.sh: it adds the %s architecture)", qualified, err, out, arch)
		}
		if deb = findDeb(cacheDir, pkg, arch); deb == "" {
			return "", "", fmt.Errorf("apt-get download %s left no %s_*_%s.deb in %s", qualified, pkg, arch, cacheDir)
		}
	}
	if dir == "" {
		dir = strings.TrimSuffix(deb, ".deb")
	}
	if _, err := os.Stat(filepath.Join(dir, want)); err == nil {
		return deb, dir, nil
	}
	// Unpack beside the final folder and rename, so an interrupted
	// unpack is never mistaken for a complete one.
	tmp := dir + ".unpacking"
	os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg", "-x", deb, tmp).CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("dpkg -x %s: %v\n%s", deb, err, out)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
		return "", "", fmt.Errorf("%s unpacked without %s: %w", deb, want, err)
	}
	return deb, dir, nil
}

// FetchBusybox returns a static busybox for board b from Debian's
// busybox-static package, downloaded into cacheDir: the rescue shell an
// initramfs can carry (initramfs.Options.Shell).
//
// Side effects: files under cacheDir; runs apt-get and dpkg.
func FetchBusybox(cacheDir string, b board.Board) (string, error) {
	_, dir, err := Package(cacheDir, "busybox-static", b.DebianArch, "bin/busybox")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "bin/busybox"), nil
}
