package main

import (
	"os"
	"path/filepath"
	"strings"
)

// fillRequested fills the folder that probe.fill=DIR names with 1 MiB
// writes until one fails, as a program filling / would, and reports:
//
//	PROBE fill.midway=N            (once, after fillMidway bytes)
//	PROBE fill.result=ENOSPC       (the error that stopped it)
//	PROBE fill.bytes=N             (how much it wrote)
//	PROBE fill.memavailable=N kB   (MemAvailable afterwards)
//
// The file is removed afterwards. A RAM layer larger than the RAM ends
// this with the OOM killer or a kernel panic instead; the boot tests
// check that it ends with ENOSPC.
func fillRequested(cmdline string) {
	for _, w := range strings.Fields(cmdline) {
		dir, ok := strings.CutPrefix(w, "probe.fill=")
		if !ok || dir == "" {
			continue
		}
		p := filepath.Join(dir, "probe-fill")
		f, err := os.Create(p)
		if err != nil {
			report("fill.result", "create: %s", errText(err))
			return
		}
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i*7 + 1) // not zeros: no filesystem may elide them
		}
		var n int64
		for {
			m, err := f.Write(chunk)
			if n < fillMidway && n+int64(m) >= fillMidway {
				// A marker for tests that cut the power mid-fill.
				report("fill.midway", "%d", n+int64(m))
			}
			n += int64(m)
			if err != nil {
				report("fill.result", "%s", errText(err))
				break
			}
		}
		report("fill.bytes", "%d", n)
		reportMeminfo("fill.memavailable", "MemAvailable:")
		f.Close()
		os.Remove(p)
	}
}

// fillMidway is when the fill says it is under way.
const fillMidway = 8 << 20

func reportMeminfo(key, field string) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		report(key, "error: %v", err)
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			report(key, "%s kB", f[1])
			return
		}
	}
}
