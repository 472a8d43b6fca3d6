package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

// The persistent layer (ofs-upper=DEVICE) in QEMU: a second disk holds
// the layer, kept across the boots of one test; the root image is a fresh
// copy each boot and must come out unchanged.

const (
	armVirt    = "qemu-arm-virt"
	layerLabel = "ofsroot-upper"
	layerBytes = 64 << 20
)

// makeLayerDisk makes the layer's disk: an ext4 filesystem on the whole
// disk, labelled layerLabel.
func makeLayerDisk(t *testing.T, dir string) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	img := filepath.Join(dir, "layer.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(layerBytes)
	f.Close()
	sh(t, "mkfs.ext4", "-q", "-F", "-L", layerLabel, img)
	return img
}

// layerWant is what one boot of the persistent layer must show.
type layerWant struct {
	state  string // bootstatus.Upper.State
	before string // the probe's file before its write: "present" (kept) or "absent"
}

// checkLayerBoot checks a probe boot with the persistent layer.
func checkLayerBoot(t *testing.T, run *bootlab.Run, w layerWant) *bootstatus.Status {
	t.Helper()
	assertImageUnchanged(t, run)
	if run.ReportErr != nil || run.Report.Status == nil {
		t.Fatalf("probe report: %v (status: %s)", run.ReportErr, run.Report.StatusError)
	}
	r, st := run.Report, run.Report.Status
	if r.PID != 1 {
		t.Errorf("probe ran as PID %d", r.PID)
	}
	for _, p := range r.Problems {
		t.Errorf("probe: %s", p)
	}
	u := st.Upper
	if st.Mode != bootstatus.Protected || u == nil || u.Kind != bootstatus.UpperDevice || u.State != w.state || u.FSType != "ext4" || u.Dir != "ofsroot" || u.Device == st.Root.Device {
		t.Errorf("status: mode %s upper %+v (root %s), want a device layer, %s; reasons %q", st.Mode, u, st.Root.Device, w.state, st.Reasons)
	}
	if got := r.Values["write.before"]; len(got) != 1 || got[0] != w.before {
		t.Errorf("the probe's file before its write: %q, want %s", got, w.before)
	}
	if r.WriteRoot != "ok" || r.WriteRO != "EROFS" {
		t.Errorf("write to / %s, to the real root %s (want ok, EROFS)", r.WriteRoot, r.WriteRO)
	}
	if m, ok := r.MountAt(bootstatus.WritableLayer); !ok || m.FSType != "ext4" || u == nil || m.Source != u.Device {
		t.Errorf("%s: %+v, want the layer's device %+v", bootstatus.WritableLayer, m, u)
	}
	if m, ok := r.MountAt(bootstatus.ReadOnlyLayer); !ok || !m.ReadOnly() {
		t.Errorf("the real root at %s: %+v, want read-only", bootstatus.ReadOnlyLayer, m)
	}
	assertHas(t, run.Console, `ofsroot: upper "LABEL=`+layerLabel+`" is `)
	assertNot(t, run.Console, "DEGRADED", "a degraded boot")
	return st
}

// TestPersistentLayer boots x86 with the layer six times: a change is
// kept across boots; a reflashed root (another build id) sets the old
// layer aside; a power cut mid-write is repaired by the journal at the
// next boot, which also empties the layer (ofs-reset=1) once.
func TestPersistentLayer(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	initrdPath, _ := l.initrd(t, variant{})
	s := l.setup
	dir := filepath.Join(runDir, "persist", x86)
	layer := makeLayerDisk(t, dir)
	reflashed := filepath.Join(dir, "root-2.ext4")
	if err := bootlab.CopySparse(s.FSImage, reflashed); err != nil {
		t.Fatal(err)
	}
	err := bootlab.Edit(reflashed, 0, func(d string) error {
		os.MkdirAll(filepath.Join(d, "etc/ofsroot"), 0o755)
		return os.WriteFile(filepath.Join(d, "etc/ofsroot/build-id"), []byte("lab-image-2\n"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	words := []string{"root=UUID=" + bootlab.RootUUID, "overlayfs=yes", "ofs-upper=LABEL=" + layerLabel}
	spec := func(img string, more ...string) bootlab.RunSpec {
		return bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: append(append([]string{}, words...), more...), ExtraDisks: []string{layer}}
	}
	steps := []struct {
		name  string
		img   string
		more  []string
		want  layerWant
		check func(t *testing.T, run *bootlab.Run, st *bootstatus.Status)
	}{
		{"1-new", s.FSImage, nil, layerWant{bootstatus.UpperNew, "absent"}, nil},
		{"2-kept", s.FSImage, nil, layerWant{bootstatus.UpperReused, "present"}, nil},
		{"3-reflashed", reflashed, nil, layerWant{bootstatus.UpperSetAside, "absent"}, func(t *testing.T, run *bootlab.Run, st *bootstatus.Status) {
			assertLine(t, run.Console, "PERSISTENT LAYER SET ASIDE")
			assertLine(t, run.Console, "It is NOT merged onto this root")
			if !strings.HasPrefix(st.Upper.SetAside, "ofsroot.") || !strings.Contains(strings.Join(st.Warnings, "\n"), "PERSISTENT LAYER SET ASIDE") {
				t.Errorf("set aside as %q; warnings %q", st.Upper.SetAside, st.Warnings)
			}
			if st.Upper.Lower != "UUID="+bootlab.RootUUID+" build-id:lab-image-2" {
				t.Errorf("bound to %q", st.Upper.Lower)
			}
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) {
			run := runBoot(t, s, spec(step.img, step.more...))
			st := checkLayerBoot(t, run, step.want)
			if step.check != nil && !t.Failed() {
				step.check(t, run, st)
			}
		}) {
			return
		}
	}

	// The power cut: the probe fills / (the layer) and QEMU is killed
	// once 8 MiB are written.
	if !t.Run("4-power-cut", func(t *testing.T) {
		run := bootUntil(t, s, spec(reflashed, "probe.fill=/"), "PROBE fill.midway=")
		assertImageUnchanged(t, run)
		if !run.Console.Contains("PROBE fill.midway=") || run.Console.Contains("PROBE fill.bytes=") {
			t.Fatalf("the power was not cut mid-fill")
		}
		// The report is cut short: its lines are read off the console.
		if got := run.Console.Lines("PROBE write.before="); len(got) != 1 || !strings.HasSuffix(strings.TrimSpace(got[0]), "=present") {
			t.Errorf("before the cut, the change of boot 3: %q", got)
		}
	}) {
		return
	}
	// The layer was cut off mounted: its journal is to be replayed by
	// the next mount (as after every probe boot, which reboots without
	// unmounting; this one was also mid-write, nothing synced).
	out, _ := exec.Command("dumpe2fs", "-h", layer).CombinedOutput()
	if !strings.Contains(string(out), "needs_recovery") {
		t.Errorf("after the cut the layer does not need recovery\n%s", out)
	}
	if !t.Run("5-replayed-and-reset", func(t *testing.T) {
		run := runBoot(t, s, spec(reflashed, "ofs-reset=1"))
		checkLayerBoot(t, run, layerWant{bootstatus.UpperReset, "absent"})
		assertLine(t, run.Console, "the journal of the upper device", "needs recovery")
		assertHas(t, run.Console, "PERSISTENT LAYER RESET (ofs-reset=1)")
	}) {
		return
	}
	sh(t, "e2fsck", "-fn", layer)
	t.Run("6-reset-once", func(t *testing.T) {
		run := runBoot(t, s, spec(reflashed))
		checkLayerBoot(t, run, layerWant{bootstatus.UpperReused, "present"})
	})
	sh(t, "e2fsck", "-fn", layer)
}

// TestPersistentLayerARM: the layer on the ARM virt board keeps a change
// across two boots; without its disk the boot falls back to RAM,
// degraded, still protected.
func TestPersistentLayerARM(t *testing.T) {
	t.Parallel()
	l := getLab(t, armVirt)
	initrdPath, _ := l.initrd(t, variant{})
	s := l.setup
	layer := makeLayerDisk(t, filepath.Join(runDir, "persist", armVirt))
	img := s.DiskImage
	words := []string{"root=PARTUUID=" + s.Layout.PartUUID, "overlayfs=yes", "ofs-upper=LABEL=" + layerLabel}
	for _, want := range []layerWant{{bootstatus.UpperNew, "absent"}, {bootstatus.UpperReused, "present"}} {
		if !t.Run(want.state, func(t *testing.T) {
			run := runBoot(t, s, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: words, ExtraDisks: []string{layer}})
			checkLayerBoot(t, run, want)
		}) {
			return
		}
	}
	t.Run("missing", func(t *testing.T) {
		run := runBoot(t, s, bootlab.RunSpec{Initrd: initrdPath, Image: img, Append: words})
		assertImageUnchanged(t, run)
		if run.ReportErr != nil || run.Report.Status == nil {
			t.Fatalf("probe report: %v", run.ReportErr)
		}
		r, st := run.Report, run.Report.Status
		if st.Mode != bootstatus.Degraded || st.Upper == nil || st.Upper.Kind != bootstatus.UpperRAM || !strings.Contains(st.Upper.Fallback, `device "LABEL=`+layerLabel+`" not found`) ||
			len(st.Reasons) != 1 || st.RAM == nil {
			t.Errorf("status: mode %s upper %+v reasons %q RAM %+v", st.Mode, st.Upper, st.Reasons, st.RAM)
		}
		if m, ok := r.MountAt(bootstatus.WritableLayer); !ok || m.FSType != "tmpfs" {
			t.Errorf("%s: %+v, want the RAM layer", bootstatus.WritableLayer, m)
		}
		if r.WriteRoot != "ok" || r.InUpper != "present" || r.WriteRO != "EROFS" {
			t.Errorf("writes: / %s, in the RAM layer %s, real root %s", r.WriteRoot, r.InUpper, r.WriteRO)
		}
		assertLine(t, run.Console, "DEGRADED: persistent layer ofs-upper=LABEL="+layerLabel+" not used")
		assertHas(t, run.Console, "The root is still PROTECTED, by a RAM layer instead")
	})
}

// TestPersistentLayerSystemd boots the systemd root once with a fresh
// persistent layer: systemd comes up with no failed unit over it, the
// probe's write lands in the layer on its disk (in place, without a
// journal replay), and the filesystem checks clean after systemd's
// power-off.
func TestPersistentLayerSystemd(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	img := systemdImage(t, l)
	initrdPath, _ := l.initrd(t, variant{})
	layer := makeLayerDisk(t, filepath.Join(runDir, "persist", "systemd"))
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img, ExtraDisks: []string{layer},
		Append: []string{"root=UUID=" + bootlab.RootUUID, "overlayfs=yes", "ofs-upper=LABEL=" + layerLabel}})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	assertSystemdUp(t, run)
	assertImageUnchanged(t, run)
	r, st := run.Report, run.Report.Status
	if st == nil || st.Mode != bootstatus.Protected || st.Upper == nil || st.Upper.Kind != bootstatus.UpperDevice || st.Upper.State != bootstatus.UpperNew {
		t.Fatalf("status %+v (%s)", st, r.StatusError)
	}
	if r.WriteRoot != "ok" || r.WriteRO != "EROFS" {
		t.Errorf("writes: root %q, under root-RO %q", r.WriteRoot, r.WriteRO)
	}
	if m, ok := r.MountAt(bootstatus.WritableLayer); !ok || m.FSType != "ext4" || m.Source != st.Upper.Device {
		t.Errorf("%s: %+v", bootstatus.WritableLayer, m)
	}
	// systemd's shutdown cannot remount the layer read-only under the
	// overlay that is /, so its journal is replayed at the next mount,
	// as after a power cut; what was written is in place all the same.
	if out, _ := exec.Command("dumpe2fs", "-h", layer).CombinedOutput(); strings.Contains(string(out), "needs_recovery") {
		t.Logf("after systemd's power-off the layer's journal is to be replayed at the next mount")
	}
	sh(t, "e2fsck", "-fn", layer)
	out, err := exec.Command("debugfs", "-R", "stat /ofsroot/upper/probe-wrote-this", layer).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Type: regular") {
		t.Errorf("the probe's write is not in the layer on its disk: %v\n%s", err, out)
	}
}
