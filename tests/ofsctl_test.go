package tests

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/overlaydiff"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
)

// The ofsctl boots use their own root image: the test root plus
// /usr/bin/ofsctl, made once per run.
var (
	ofsctlOnce  sync.Once
	ofsctlImage string
	ofsctlErr   error
)

func ofsctlRoot(t *testing.T) (*lab, string) {
	t.Helper()
	l := getLab(t, "qemu-x86_64")
	ofsctlOnce.Do(func() {
		ofsctlImage, ofsctlErr = l.setup.OfsctlRoot(filepath.Join(runDir, "ofsctl-root"))
	})
	if ofsctlErr != nil {
		t.Fatal(ofsctlErr)
	}
	return l, ofsctlImage
}

// ofsctlWords turns ofsctl command lines into probe.run= words.
func ofsctlWords(cmds ...string) []string {
	var w []string
	for _, c := range cmds {
		w = append(w, "probe.run="+bootlab.OfsctlPath+","+strings.Join(strings.Fields(c), ","))
	}
	return w
}

// bootOfsctl boots the ofsctl root with words and returns the run and
// the ofsctl runs the probe reported, which must be as many as asked.
func bootOfsctl(t *testing.T, v variant, words []string, nRuns int) (*bootlab.Run, []bootlab.ProgramRun) {
	t.Helper()
	l, img := ofsctlRoot(t)
	initrd, _ := l.initrd(t, v)
	s := l.setup
	words = append([]string{"root=" + s.Board.QEMU.DiskDevice}, words...)
	run := runBoot(t, s, bootlab.RunSpec{Initrd: initrd, Image: img, Append: words})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	runs := run.Report.Runs()
	if len(runs) != nRuns {
		t.Fatalf("the probe ran %d programs, want %d: %+v", len(runs), nRuns, runs)
	}
	for _, r := range runs {
		t.Logf("%s: exit %d\n%s", r.Cmd, r.Exit, r.Output)
	}
	return run, runs
}

func decodeStatus(t *testing.T, pr bootlab.ProgramRun) *rootstatus.Report {
	t.Helper()
	var r rootstatus.Report
	if err := json.Unmarshal([]byte(pr.Output), &r); err != nil {
		t.Fatalf("%s: not JSON (%v):\n%s", pr.Cmd, err, pr.Output)
	}
	return &r
}

// TestOfsctlProtected boots a protected root and runs ofsctl in it:
// status says protected with the RAM layer's real size, and diff lists
// exactly what the boot changed: the probe's /probe-wrote-this and the
// init's rewritten /etc/fstab.
func TestOfsctlProtected(t *testing.T) {
	t.Parallel()
	run, runs := bootOfsctl(t, variant{}, append([]string{"overlayfs=yes", "ofs-size=20"},
		ofsctlWords("status --json", "diff --json", "status", "diff /etc", "commit /probe-wrote-this", "diff", "maint --quiet -- /usr/bin/ofsctl status --json", "status --json")...), 8)
	rep := run.Report

	st := decodeStatus(t, runs[0])
	if runs[0].Exit != 0 || st.Mode != bootstatus.Protected || !st.Protected {
		t.Errorf("status --json: exit %d mode %q, want 0 protected", runs[0].Exit, st.Mode)
	}
	if rr := st.RealRoot; rr == nil || rr.Device != "/dev/vda" || rr.FSType != "ext4" || rr.Mount != "/mnt/root-RO" || !rr.ReadOnly || !rr.SuperReadOnly {
		t.Errorf("real root %+v, want /dev/vda ext4 at /mnt/root-RO, read-only", st.RealRoot)
	}
	if st.RAM == nil || rep.RW == nil {
		t.Fatalf("RAM %+v, probe statfs %+v (%s)", st.RAM, rep.RW, rep.RWError)
	}
	if st.RAM.SizeBytes != rep.RW.Bytes() || st.RAM.Mount != "/mnt/root-RW" || st.RAM.Source != "tmpfs-root" {
		t.Errorf("RAM %+v, want %d bytes (the probe's statfs) of tmpfs-root at /mnt/root-RW", st.RAM, rep.RW.Bytes())
	}
	if pct := float64(st.RAM.SizeBytes) / float64(rep.MemTotal); pct < 0.19 || pct > 0.21 {
		t.Errorf("RAM layer %d bytes is %.3f of MemTotal %d, want 20%% (ofs-size=20)", st.RAM.SizeBytes, pct, rep.MemTotal)
	}
	if st.RAM.UsedBytes == 0 || st.RAM.UsedBytes >= st.RAM.SizeBytes || st.RAM.InodesUsed == 0 || st.RAM.InodesUsed >= st.RAM.Inodes {
		t.Errorf("RAM use %+v: want some, not all", st.RAM)
	}
	if st.Kernel.RootFSType != "overlay" || st.StatusMode != bootstatus.Protected || len(st.Reasons) != 0 {
		t.Errorf("kernel %+v, status file %q, reasons %q", st.Kernel, st.StatusMode, st.Reasons)
	}

	var d struct {
		Lower, Upper string
		Changes      []overlaydiff.Change
	}
	if err := json.Unmarshal([]byte(runs[1].Output), &d); err != nil || runs[1].Exit != 0 {
		t.Fatalf("diff --json: exit %d, %v:\n%s", runs[1].Exit, err, runs[1].Output)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, c.String())
	}
	want := []string{"M /etc/fstab (content)", "A /probe-wrote-this"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff --json lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if runs[2].Exit != 0 || !strings.Contains(runs[2].Output, "mode:       protected\n") || !strings.Contains(runs[2].Output, "RAM layer:  tmpfs-root at /mnt/root-RW: ") {
		t.Errorf("status (text): exit %d\n%s", runs[2].Exit, runs[2].Output)
	}
	if runs[3].Exit != 0 || runs[3].Output != "M /etc/fstab (content)\n" {
		t.Errorf("diff /etc: exit %d %q", runs[3].Exit, runs[3].Output)
	}

	// commit keeps the probe's file in the real root, and only it.
	if runs[4].Exit != 0 || runs[4].Output != "A /probe-wrote-this\nofsctl commit: 1 changes written to /mnt/root-RO, which is read-only again\n" {
		t.Errorf("commit: exit %d %q", runs[4].Exit, runs[4].Output)
	}
	if runs[5].Exit != 0 || runs[5].Output != "M /etc/fstab (content)\n" {
		t.Errorf("diff after commit: exit %d %q, want only the fstab", runs[5].Exit, runs[5].Output)
	}
	// Inside maint, the real root is / and writable (status run there
	// says so: not protected); outside, read-only through and through.
	if in := decodeStatus(t, runs[6]); runs[6].Exit != rootstatus.ExitDegraded || in.RealRoot == nil || in.RealRoot.Mount != "/" || in.RealRoot.ReadOnly || in.Kernel.RootFSType != "ext4" {
		t.Errorf("status inside maint: exit %d %+v %+v", runs[6].Exit, in.RealRoot, in.Kernel)
	}
	if after := decodeStatus(t, runs[7]); after.Mode != bootstatus.Protected || !after.RealRoot.ReadOnly || !after.RealRoot.SuperReadOnly || len(after.Warnings) != 0 {
		t.Errorf("status after commit: %+v %+v %q: want protected, the real root read-only through and through", after.Mode, after.RealRoot, after.Warnings)
	}
	if err := bootlab.Fsck(run.Image, 0); err != nil {
		t.Errorf("the real root after commit: %v", err)
	}
	got2 := debugfsCat(t, run.Image, "/probe-wrote-this")
	if got2 != "written by the ofsroot probe\n" {
		t.Errorf("/probe-wrote-this in the image: %q", got2)
	}
	if fstab := debugfsCat(t, run.Image, "/etc/fstab"); fstab != strings.Join(bootlab.FstabLines, "\n")+"\n" {
		t.Errorf("the image's /etc/fstab changed:\n%s", fstab)
	}
}

// debugfsCat reads a file from an ext4 image without mounting it.
func debugfsCat(t *testing.T, image, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, image).Output()
	if err != nil {
		t.Errorf("debugfs cat %s %s: %v", image, path, err)
	}
	return string(out)
}

// TestOfsctlPlain: without the overlay, status says plain and exits 3.
func TestOfsctlPlain(t *testing.T) {
	t.Parallel()
	_, runs := bootOfsctl(t, variant{}, append([]string{"ro"}, ofsctlWords("status --json", "diff")...), 2)
	st := decodeStatus(t, runs[0])
	if runs[0].Exit != rootstatus.ExitPlain || st.Mode != bootstatus.Plain || st.Protected {
		t.Errorf("status: exit %d mode %q, want %d plain", runs[0].Exit, st.Mode, rootstatus.ExitPlain)
	}
	if st.RealRoot == nil || st.RealRoot.Device != "/dev/vda" || st.RealRoot.Mount != "/" || !st.RealRoot.ReadOnly || st.RAM != nil {
		t.Errorf("real root %+v RAM %+v, want /dev/vda at / read-only, no RAM layer", st.RealRoot, st.RAM)
	}
	// The layers are missing: exit 2, as for any missing input.
	if runs[1].Exit != 2 || !strings.Contains(runs[1].Output, "/mnt/root-RW/upper") || !strings.Contains(runs[1].Output, "ofsctl status") {
		t.Errorf("diff without layers: exit %d %q, want 2 and a hint", runs[1].Exit, runs[1].Output)
	}
}

// TestOfsctlDegraded: an initramfs without the overlay module boots the
// real root read-only; status says degraded, with the init's reason,
// and exits 4.
func TestOfsctlDegraded(t *testing.T) {
	t.Parallel()
	_, runs := bootOfsctl(t, variant{without: []string{"overlay"}}, append([]string{"overlayfs=yes"}, ofsctlWords("status --json", "status")...), 2)
	st := decodeStatus(t, runs[0])
	if runs[0].Exit != rootstatus.ExitDegraded || st.Mode != bootstatus.Degraded || st.Protected {
		t.Errorf("status: exit %d mode %q, want %d degraded", runs[0].Exit, st.Mode, rootstatus.ExitDegraded)
	}
	if len(st.Reasons) == 0 || st.StatusMode != bootstatus.Degraded || st.Kernel.RootFSType != "ext4" {
		t.Errorf("reasons %q, status file %q, kernel %+v", st.Reasons, st.StatusMode, st.Kernel)
	}
	if st.RealRoot == nil || !st.RealRoot.ReadOnly {
		t.Errorf("real root %+v, want read-only", st.RealRoot)
	}
	if runs[1].Exit != rootstatus.ExitDegraded || !strings.Contains(runs[1].Output, "reason:") {
		t.Errorf("status (text): exit %d\n%s", runs[1].Exit, runs[1].Output)
	}
}
