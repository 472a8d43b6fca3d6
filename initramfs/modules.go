package initramfs

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/debpkg"
	"github.com/ofsroot/ofsroot/pkg/kmod"
)

// openKernel returns the package root of the kernel input: the folder
// itself, or a temporary folder with the module tree of a .deb.
func openKernel(kernel string, logf func(string, ...any)) (string, func(), error) {
	nop := func() {}
	fi, err := os.Stat(kernel)
	if err != nil {
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	if fi.IsDir() {
		return kernel, nop, nil
	}
	f, err := os.Open(kernel)
	if err != nil {
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	magic := make([]byte, 8)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil || string(magic) != "!<arch>\n" {
		return "", nop, fmt.Errorf("kernel %s is neither a folder nor a Debian package (.deb)", kernel)
	}
	tmp, err := os.MkdirTemp("", "ofsroot-kernel-")
	if err != nil {
		return "", nop, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	logf("unpacking the module tree of %s", kernel)
	keep := func(name string) bool {
		for _, d := range kmod.ModulesDirs {
			if strings.HasPrefix(name, d+"/") {
				return true
			}
		}
		return false
	}
	if err := debpkg.ExtractFiltered(kernel, tmp, keep); err != nil {
		cleanup()
		return "", nop, fmt.Errorf("kernel: %w", err)
	}
	return tmp, cleanup, nil
}

// leaveOut drops the modules named in without from mods, recording them
// in res.Omitted and warning about kept modules that need them.
func leaveOut(mods []kmod.Module, without []string, boardName string, res *Result) ([]kmod.Module, error) {
	drop := map[string]bool{}
	for _, w := range without {
		n := kmod.NormalizeName(strings.TrimSpace(w))
		if !slicesContainsModule(mods, n) {
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
			}
			return nil, fmt.Errorf("cannot leave out module %q: it is not among the modules for board %s (%s)", w, boardName, strings.Join(names, " "))
		}
		drop[n] = true
	}
	var kept []kmod.Module
	for _, m := range mods {
		if drop[m.Name] {
			res.Omitted = append(res.Omitted, m.Name)
			continue
		}
		for _, d := range m.Info.Depends {
			if drop[d] {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s needs %s, which is left out: loading %s will fail", m.Name, d, m.Name))
			}
		}
		kept = append(kept, m)
	}
	return kept, nil
}

func slicesContainsModule(mods []kmod.Module, name string) bool {
	name = kmod.NormalizeName(name)
	for _, m := range mods {
		if m.Name == name {
			return true
		}
	}
	return false
}
