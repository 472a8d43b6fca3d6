package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// labFolders returns the kernel cache and a new work folder for a
// command that boots QEMU, and a function that removes the work folder
// or, with keep, says where it is. Those commands (demo, bench) build
// their guest programs with Go from ofsroot's source tree, so they are
// refused first, with what to do, where there is none (an installed
// package) or no go command.
func labFolders(command string, keep bool, w io.Writer) (cache, work string, done func(), err error) {
	if _, err := bootlab.ModuleRoot(); err != nil {
		return "", "", nil, fmt.Errorf("the programs it boots (the probe root, the benchmark's marker) are built with Go from ofsroot's source tree, and %v: run `make %s` in a checkout of the source, with Go installed; the package's own builder commands are initramfs, image, install, bootfiles and flash", err, command)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", "", nil, fmt.Errorf("the programs it boots are built with Go, and there is no go command (%v): install Go (the version go.mod names)", err)
	}
	cache, err = bootlab.CacheDir()
	if err != nil {
		return "", "", nil, err
	}
	work, err = os.MkdirTemp("", "ofsroot-"+command+"-")
	if err != nil {
		return "", "", nil, err
	}
	done = func() {
		if keep {
			fmt.Fprintf(w, "%s: work folder kept: %s\n", command, work)
			return
		}
		os.RemoveAll(work)
	}
	return cache, work, done, nil
}
