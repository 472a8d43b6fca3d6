package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// labFolders returns the kernel cache and a new work folder for a
// command that boots QEMU, and a function that removes the work folder
// or, with keep, says where it is.
func labFolders(command string, keep bool, w io.Writer) (cache, work string, done func(), err error) {
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
