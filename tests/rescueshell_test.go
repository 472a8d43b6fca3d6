package tests

import (
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// TestRescueShell: with a shell in the initramfs, ofs-rescue=shell gives
// a shell on the console when there is no root; what is typed there runs,
// and leaving it reboots.
func TestRescueShell(t *testing.T) {
	t.Parallel()
	spec := "LABEL=no-such-root"
	run := boot(t, bootCase{
		board:   "qemu-x86_64",
		variant: variant{shell: true},
		root:    spec,
		words:   []string{"ofs-rescue=shell"},
		noProbe: true,
		replies: []bootlab.Reply{{When: "(ofsroot rescue) # ", Send: "echo typed-$((6*7)) in the rescue shell; exit\n"}},
	})
	c := run.Console
	assertLine(t, c, "ofsroot: error: ", `root device "`+spec+`" not found`)
	assertLine(t, c, "ofsroot: ", "rescue: starting /bin/sh on the console (ofs-rescue=shell)")
	assertLine(t, c, "typed-42 in the rescue shell")
	assertLine(t, c, "ofsroot: ", "rescue: rebooting in 0 s")
	if c.TimedOut {
		t.Error("QEMU had to be killed: the shell or the reboot after it hung")
	}
}
