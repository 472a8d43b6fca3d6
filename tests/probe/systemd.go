package main

import (
	"os"
	"os/exec"
	"strings"
)

// reportSystemd says how far systemd got and which units failed:
//
//	PROBE systemd.state=running|starting|degraded|...  (systemctl is-system-running)
//	PROBE systemd.failed=UNIT                          (one line per failed unit)
//	PROBE systemd.failed.count=N
//
// The probe's own service is still running when it asks, so the state is
// usually "starting"; the failed units are what a test checks.
func reportSystemd() {
	state, _ := exec.Command("systemctl", "is-system-running").Output()
	report("systemd.state", "%s", strings.TrimSpace(string(state)))
	out, err := exec.Command("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager").Output()
	if err != nil {
		report("systemd.failed.error", "%s", errText(err))
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			report("systemd.failed", "%s", f[0])
			n++
		}
	}
	report("systemd.failed.count", "%d", n)
}

// powerOffBySystemd asks systemd for a power-off (QEMU exits) and ends
// the probe; the service is a oneshot, so systemd waits for it first.
func powerOffBySystemd() {
	if err := exec.Command("systemctl", "--no-block", "poweroff").Run(); err != nil {
		report("error", "systemctl poweroff: %s", errText(err))
	}
	os.Exit(0)
}
