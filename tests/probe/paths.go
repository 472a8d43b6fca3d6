package main

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// pathChecks look at folders the command line names, after the
// probe.run= programs ran (so that a `busybox mount -a` one of them did
// is in place):
//
//	probe.has=FILE    PROBE path.has=FILE present|absent|ERRNO
//	probe.write=DIR   PROBE path.mount=DIR FSTYPE SOURCE OPTIONS  (the mount on top at DIR)
//	                  PROBE path.write=DIR ok|EROFS|...  (writing DIR/probe-wrote-this)
//
// Each word may repeat; the has checks come first, so that a file a
// previous boot wrote is looked for before this boot writes it again.
func pathChecks(cmdline string) {
	words := strings.Fields(cmdline)
	for _, w := range words {
		if f, ok := strings.CutPrefix(w, "probe.has="); ok && f != "" {
			report("path.has", "%s %s", f, exists(f))
		}
	}
	for _, w := range words {
		dir, ok := strings.CutPrefix(w, "probe.write=")
		if !ok || dir == "" {
			continue
		}
		report("path.mount", "%s %s", dir, mountOf(dir))
		err := os.WriteFile(filepath.Join(dir, writeName), []byte("written by the ofsroot probe\n"), 0o644)
		report("path.write", "%s %s", dir, errText(err))
	}
	unix.Sync()
}

// mountOf describes the mount on top at dir: "FSTYPE SOURCE OPTIONS", or
// "none".
func mountOf(dir string) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "error " + errText(err)
	}
	found := "none"
	for _, l := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 2 || f[4] != dir {
			continue
		}
		found = g[0] + " " + g[1] + " " + f[5]
	}
	return found
}
