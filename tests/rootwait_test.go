package tests

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// TestRootWaitTimeout: rootwait=N waits up to N seconds for a missing
// root, saying every few seconds what it waits for and what it sees, then
// follows the rescue policy. rootdelay= waits before the first look.
//
// The figures are the guest's own (the init's count and the kernel's
// timestamps on the console): never give up early. There is no upper
// limit: under TCG on a loaded host the guest's sleeps overshoot (a
// loaded run said "not found after 8.1 s" for rootwait=7, and its one
// stall skipped the 5 s progress line: 11 s leaves room for it).
func TestRootWaitTimeout(t *testing.T) {
	t.Parallel()
	spec := "LABEL=no-such-label"
	run := boot(t, bootCase{board: "qemu-x86_64", root: spec, words: []string{"rootwait=11", "rootdelay=1", "ofs-rescue-delay=0"}, noProbe: true})
	c := run.Console
	delayLine := assertLine(t, c, "ofsroot: ", "rootdelay: waiting 1s")
	assertLine(t, c, "ofsroot: ", `waiting for root device "`+spec+`"`, "s so far); seen: ", "vda")
	errLine := assertLine(t, c, "ofsroot: error: ", `root device "`+spec+`" not found after `, "(rootwait=11)")
	assertLine(t, c, "ofsroot: ", "rescue: rebooting in 0 s")
	assertNot(t, c, "switching to", "a hand-over")
	if c.TimedOut {
		t.Error("QEMU had to be killed: the init did not reboot")
	}
	if errLine == "" || delayLine == "" {
		return
	}
	// The init's own count of the wait.
	m := regexp.MustCompile(`not found after ([0-9.]+) s`).FindStringSubmatch(errLine)
	if m == nil {
		t.Fatalf("no wait in %q", errLine)
	}
	waited, _ := strconv.ParseFloat(m[1], 64)
	if waited < 11 {
		t.Errorf("gave up after %.1f s of rootwait=11", waited)
	}
	// The kernel's clock: rootdelay (1 s) and rootwait (11 s) both
	// passed between the two lines.
	t0, ok0 := bootlab.GuestTime(delayLine)
	t1, ok1 := bootlab.GuestTime(errLine)
	if !ok0 || !ok1 {
		t.Fatalf("no kernel timestamps on %q and %q", delayLine, errLine)
	}
	if t1-t0 < 12 {
		t.Errorf("by the guest's clock, %.2f s from rootdelay to giving up; want at least 1 + 11 s", t1-t0)
	}
	t.Logf("guest clock: rootdelay at %.2f s, gave up at %.2f s (%.2f s later); the init counted %.1f s of rootwait", t0, t1, t1-t0, waited)
}
