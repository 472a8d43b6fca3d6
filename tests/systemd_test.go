package tests

import (
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// systemdImage returns the lab's systemd root for the board (built once
// per run: pkg/bootlab's SystemdImage).
func systemdImage(t *testing.T, l *lab) string {
	t.Helper()
	img, err := l.setup.SystemdImage()
	if err != nil {
		t.Fatalf("systemd root: %v (the test needs Debian's mirror once; the debootstrap is cached)", err)
	}
	return img
}

// assertSystemdUp checks that the probe ran as systemd's service, after
// multi-user.target, and that no unit failed.
func assertSystemdUp(t *testing.T, run *bootlab.Run) {
	t.Helper()
	r := run.Report
	if r.PID == 1 {
		t.Fatalf("the probe ran as PID 1: systemd did not start")
	}
	if got := r.Values["systemd.failed.count"]; len(got) != 1 || got[0] != "0" {
		t.Errorf("failed units: %v (count %v)", r.Values["systemd.failed"], got)
	}
	if st := r.Values["systemd.state"]; len(st) != 1 || (st[0] != "running" && st[0] != "starting") {
		t.Errorf("systemd state %v, want running (or starting, while the probe's own job runs)", st)
	}
}

// TestSystemdRoot boots a Debian bookworm root with systemd (debootstrap
// minbase + systemd-sysv) under the ofsroot init on x86, protected: systemd
// reaches multi-user.target with no failed unit, / is the overlay with
// the real root read-only below, writes land in the RAM layer only, and
// the disk's bytes are unchanged. The same image is what issue 13's layer
// kinds boot with a real systemd.
func TestSystemdRoot(t *testing.T) {
	t.Parallel()
	l := getLab(t, "qemu-x86_64")
	img := systemdImage(t, l)
	initrdPath, _ := l.initrd(t, variant{})
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img,
		Append: []string{"root=UUID=" + bootlab.RootUUID, "overlayfs=yes", "ofs-size=20"}})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	assertSystemdUp(t, run)
	r := run.Report
	if r.Status == nil || r.Status.Mode != bootstatus.Protected {
		t.Fatalf("status %+v (%s)", r.Status, r.StatusError)
	}
	if r.WriteRoot != "ok" || r.InUpper != "present" || r.InLower != "absent" || r.WriteRO != "EROFS" {
		t.Errorf("writes: root %q upper %q lower %q under root-RO %q", r.WriteRoot, r.InUpper, r.InLower, r.WriteRO)
	}
	if !strings.Contains(r.Fstab, "# This fstab is in RAM") {
		t.Errorf("systemd saw the real fstab:\n%s", r.Fstab)
	}
	if !run.ImageUnchanged() {
		t.Errorf("the disk was written: %s -> %s", run.ImageBefore, run.ImageAfter)
	}
}
