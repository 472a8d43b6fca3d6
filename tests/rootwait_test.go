package tests

import "testing"

// TestRootWaitTimeout: rootwait=N waits up to N seconds for a missing
// root, saying every few seconds what it waits for and what it sees, then
// follows the rescue policy. rootdelay= waits before the first look.
func TestRootWaitTimeout(t *testing.T) {
	t.Parallel()
	spec := "LABEL=no-such-label"
	run := boot(t, bootCase{board: "qemu-x86_64", root: spec, words: []string{"rootwait=7", "rootdelay=1", "ofs-rescue-delay=0"}, noProbe: true})
	c := run.Console
	assertLine(t, c, "ofsroot: ", "rootdelay: waiting 1s")
	assertLine(t, c, "ofsroot: ", `waiting for root device "`+spec+`"`, "seen: ", "vda")
	assertLine(t, c, "ofsroot: error: ", `root device "`+spec+`" not found after 7.`, "(rootwait=7)")
	assertLine(t, c, "ofsroot: ", "rescue: rebooting in 0 s")
	assertNot(t, c, "switching to", "a hand-over")
	if c.TimedOut {
		t.Error("QEMU had to be killed: the init did not reboot")
	}
}
