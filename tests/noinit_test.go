package tests

import "testing"

// TestNoInit: a root without the init that init= names is a root with
// nothing to boot: the init says what it tried and follows the rescue
// policy, leaving the device unwritten.
func TestNoInit(t *testing.T) {
	t.Parallel()
	run := boot(t, bootCase{board: "qemu-x86_64", words: []string{"overlayfs=yes", "init=/sbin/no-such-init", "ofs-rescue-delay=0"}, noProbe: true})
	c := run.Console
	assertLine(t, c, "ofsroot: error: ", "has no init", "/sbin/no-such-init (no such file or directory)")
	assertLine(t, c, "ofsroot: ", "rescue: rebooting in 0 s")
	assertNot(t, c, "switching to", "a hand-over")
	if c.TimedOut {
		t.Error("QEMU had to be killed: the init did not reboot")
	}
	assertImageUnchanged(t, run)
}
