package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
)

// TestBenchInstructionClock boots the benchmark on QEMU's instruction
// clock. What tells it from the guest's own clock: the kernel-only floor,
// whose /init is the marker itself, takes 0.08 to 0.19 s on the guest's
// clock here (QEMU translating the marker's code as it first runs) and
// about 1 ms of instructions; ofsroot's stage, module loading, stays
// far above it. (Two boots are not compared with each other: a virtio
// disk read completes at the host's pace, and the idle guest's clock
// then jumps to its next timer, so a loaded host still moves x86 stages
// by up to 20%.)
func TestBenchInstructionClock(t *testing.T) {
	testenv.SkipIfShort(t, "two QEMU boots of each variant")
	code, stdout, stderr := runCLI("bench", "--boards", "qemu-x86_64", "--boots", "2", "--icount")
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "on the instruction clock (-icount shift=0,sleep=off") {
		t.Errorf("the header does not name the clock:\n%s", stdout)
	}
	lo, _ := stageRange(t, stdout, "ofsroot ")
	if _, floor := stageRange(t, stdout, "kernel only "); floor > 0.01 || lo < 0.1 {
		t.Errorf("the floor took up to %.3f s and ofsroot at least %.3f s: not the instruction clock?\n%s", floor, lo, stdout)
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
