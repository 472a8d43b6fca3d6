package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

// TestBenchInstructionClock boots the benchmark on QEMU's instruction
// clock: two boots of the same initramfs then take about the same guest
// time whatever the host's load (within 10%: a disk read still completes
// at the host's pace, and the idle guest's clock jumps to its next timer;
// under the host's clock two boots here differ by 10 to 300%), and the
// kernel-only floor, which runs no init of its own, takes almost none
// of it.
func TestBenchInstructionClock(t *testing.T) {
	testenv.SkipIfShort(t, "two QEMU boots of each variant")
	code, stdout, stderr := runCLI("bench", "--boards", "qemu-x86_64", "--boots", "2", "--icount")
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "on the instruction clock (-icount shift=0,sleep=off") {
		t.Errorf("the header does not name the clock:\n%s", stdout)
	}
	lo, hi := stageRange(t, stdout, "ofsroot ")
	if lo <= 0 || (hi-lo)/lo > 0.10 {
		t.Errorf("ofsroot's two boots took %.3f and %.3f s on the instruction clock: not the same work?\n%s", lo, hi, stdout)
	}
	if _, floor := stageRange(t, stdout, "kernel only "); floor > lo/10 {
		t.Errorf("the floor took %.3f s, ofsroot %.3f s\n%s", floor, lo, stdout)
	}
}

// stageRange reads the min–max column of the table row starting with
// name.
func stageRange(t *testing.T, out, name string) (lo, hi float64) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		for _, f := range strings.Fields(line) {
			a, b, ok := strings.Cut(f, "–")
			if !ok {
				continue
			}
			x, err1 := strconv.ParseFloat(a, 64)
			y, err2 := strconv.ParseFloat(b, 64)
			if err1 == nil && err2 == nil {
				return x, y
			}
		}
	}
	t.Fatalf("no row %q with a min–max in:\n%s", name, out)
	return 0, 0
}
