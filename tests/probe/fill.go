package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
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
// The file is removed afterwards, unless probe.fill.keep is on the
// command line (the probe.run= programs then run after the fill, on the
// full layer). probe.fill.random fills with incompressible bytes, not a
// pattern that a compressed layer (zram) stores in a few pages. With a
// zram device, its state follows:
//
//	PROBE fill.zram.mm_stat=...    (/sys/block/zram0/mm_stat)
//	PROBE fill.zram.io_stat=...    (failed_reads failed_writes ...)
//
// A RAM layer larger than the RAM ends this with the OOM killer or a
// kernel panic instead; the boot tests check that it ends with ENOSPC.
func fillRequested(cmdline string) {
	words := strings.Fields(cmdline)
	random := slices.Contains(words, "probe.fill.random")
	keep := slices.Contains(words, "probe.fill.keep")
	for _, w := range words {
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
		x := uint64(0x9e3779b97f4a7c15)
		for {
			if random {
				for i := 0; i+8 <= len(chunk); i += 8 {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					binary.LittleEndian.PutUint64(chunk[i:], x)
				}
			}
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
		for _, name := range []string{"mm_stat", "io_stat"} {
			if b, err := os.ReadFile("/sys/block/zram0/" + name); err == nil {
				report("fill.zram."+name, "%s", strings.Join(strings.Fields(string(b)), " "))
			}
		}
		if !keep {
			os.Remove(p)
		}
	}
}

// fillFirst says whether the fill comes before the probe.run= programs
// (probe.fill.keep: they look at the full layer).
func fillFirst(cmdline string) bool {
	return slices.Contains(strings.Fields(cmdline), "probe.fill.keep")
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
