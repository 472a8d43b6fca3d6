package tests

import (
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
	"github.com/ofsroot/ofsroot/pkg/rootstatus"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// zramFill checks a probe fill of a zram layer: it ended in ENOSPC, the
// device's RAM stayed under its cap and it failed no write. It returns
// the device's mm_stat after the fill.
func zramFill(t *testing.T, r *bootlab.Report, limit uint64) zram.MMStat {
	t.Helper()
	res, n := r.Values["fill.result"], r.Values["fill.bytes"]
	if len(res) == 0 || res[0] != "ENOSPC" {
		t.Errorf("filling / ended with %q after %v bytes, want ENOSPC", res, n)
	}
	mms, ios := r.Values["fill.zram.mm_stat"], r.Values["fill.zram.io_stat"]
	if len(mms) == 0 || len(ios) == 0 {
		t.Fatalf("the probe reported no zram0 after the fill: mm_stat %q io_stat %q", mms, ios)
	}
	mm, err := zram.ParseMMStat(mms[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %v bytes, then %v; zram0 mm_stat %+v (ratio %.2f); io_stat %s", n, res, mm, mm.Ratio(), ios[0])
	if mm.MemLimit != limit || mm.MemUsedMax > limit {
		t.Errorf("zram0 took at most %d bytes of RAM, cap %d (status says %d): over it, or not the cap set", mm.MemUsedMax, mm.MemLimit, limit)
	}
	if f := strings.Fields(ios[0]); len(f) < 2 || f[1] != "0" {
		t.Errorf("zram0 failed writes (io_stat %q): data was lost", ios[0])
	}
	return mm
}

// zramStatus checks the status record of a zram layer and returns it.
func zramStatus(t *testing.T, r *bootlab.Report, alg string) *bootstatus.Upper {
	t.Helper()
	st := r.Status
	if st == nil {
		t.Fatalf("no status: %s", r.StatusError)
	}
	u := st.Upper
	if st.Mode != bootstatus.Protected || u == nil || u.Kind != bootstatus.UpperZram || u.Device != "/dev/zram0" || u.FSType != "ext4" || u.Fallback != "" || u.Zram == nil {
		t.Fatalf("status mode %q upper %+v", st.Mode, u)
	}
	z := u.Zram
	if z.Algorithm != alg || z.MemLimitBytes == 0 || z.DisksizeBytes == 0 || z.DisksizeBytes > z.MemLimitBytes-z.MemLimitBytes/zram.Margin {
		t.Errorf("zram %+v: want %s, a disk below the cap by 1/%d", z, alg, zram.Margin)
	}
	if st.RAM != nil {
		t.Errorf("status ram %+v for a zram layer", st.RAM)
	}
	if m, ok := r.MountAt("/mnt/root-RW"); !ok || m.Source != "/dev/zram0" || m.FSType != "ext4" {
		t.Errorf("/mnt/root-RW is %+v, want ext4 on /dev/zram0", m)
	}
	if r.WriteRoot != "ok" || r.InUpper != "present" || r.InLower != "absent" || r.WriteRO != "EROFS" {
		t.Errorf("writes: / %s, upper %s, lower %s, real root %s", r.WriteRoot, r.InUpper, r.InLower, r.WriteRO)
	}
	var took float64
	for _, s := range st.Steps {
		if strings.Contains(s.Name, "zram") || strings.Contains(s.Name, "mke2fs") || strings.Contains(s.Name, "/dev/zram0") {
			t.Logf("step %-90.90s %.3f s", s.Name, s.Seconds)
		}
		if strings.HasPrefix(s.Name, "zram layer") {
			took = s.Seconds
		}
	}
	t.Logf("zram layer built in %.3f s: %+v; handover at %.3f s", took, z, st.HandoverAt)
	return u
}

// TestZramLayer boots qemu-x86_64 with ofs-upper=zram:zstd on the ofsctl
// root, the layer's RAM cap made small (ofs-size-reserve) and the disk
// asked larger (ofs-size=50): the disk is cut below the cap, the probe
// fills / with incompressible data to ENOSPC and keeps it full, then
// ofsctl status reports the device's RAM against its cap and its
// ratio, and ofsctl guard --once sees the layer full (exit 4). The
// card is not written.
func TestZramLayer(t *testing.T) {
	t.Parallel()
	l, _ := ofsctlRoot(t)
	_, plain := l.initrd(t, variant{})
	_, withZram := l.initrd(t, variant{zram: true})
	t.Logf("initramfs: %d bytes without the zram layer's files, %d with (+%d; uncompressed %d -> %d)",
		plain.CompressedBytes, withZram.CompressedBytes, withZram.CompressedBytes-plain.CompressedBytes, plain.UncompressedBytes, withZram.UncompressedBytes)
	words := append([]string{"overlayfs=yes", "ofs-upper=zram:zstd", "ofs-size=50", "ofs-size-reserve=400M", "probe.fill=/", "probe.fill.random", "probe.fill.keep"},
		ofsctlWords("status --json", "guard --once")...)
	run, runs := bootOfsctl(t, variant{zram: true}, words, 2)
	r := run.Report
	u := zramStatus(t, r, "zstd")
	mm := zramFill(t, r, u.Zram.MemLimitBytes)
	if mm.MemUsedMax < u.Zram.MemLimitBytes*8/10 {
		t.Errorf("the fill took %d bytes of RAM, under 80%% of the cap %d: incompressible data should fill the disk near it", mm.MemUsedMax, u.Zram.MemLimitBytes)
	}
	assertHas(t, run.Console, "below the RAM cap")

	st := decodeStatus(t, runs[0])
	if runs[0].Exit != 0 || st.Mode != bootstatus.Protected || st.RAM == nil || st.RAM.Zram == nil {
		t.Fatalf("status --json: exit %d %+v ram %+v", runs[0].Exit, st, st.RAM)
	}
	z := st.RAM.Zram
	if z.Algorithm != "zstd" || z.MemLimitBytes != u.Zram.MemLimitBytes || z.MemUsedBytes > z.MemLimitBytes || z.MemPercent < 80 || z.Ratio < 0.9 || z.Ratio > 1.2 || st.RAM.Source != "/dev/zram0" {
		t.Errorf("status --json zram %+v: want zstd, RAM under and near the cap %d, ratio about 1 (random data)", z, u.Zram.MemLimitBytes)
	}
	if runs[1].Exit != 4 || !strings.Contains(runs[1].Output, "action") || !strings.Contains(runs[1].Output, "zram /dev/zram0") {
		t.Errorf("guard --once on the full layer: exit %d %q, want 4 (action) naming the zram device", runs[1].Exit, runs[1].Output)
	}
	assertImageUnchanged(t, run)
}

// TestZramLayerArm boots qemu-arm-virt with an unknown compressor: the
// kernel's default is used and the console names the word. The probe
// fills / with its repeating pattern: ENOSPC when the filesystem is full,
// with little RAM taken (the ratio is reported).
func TestZramLayerArm(t *testing.T) {
	t.Parallel()
	run := boot(t, bootCase{board: "qemu-arm-virt", variant: variant{zram: true},
		words: []string{"overlayfs=yes", "ofs-upper=zram:nosuch", "ofs-size=48M", "probe.fill=/"}})
	r := run.Report
	offered := ""
	if r.Status != nil && r.Status.Upper != nil && r.Status.Upper.Zram != nil {
		offered = strings.Join(r.Status.Upper.Zram.Offered, " ")
	}
	u := zramStatus(t, r, "lzo-rle")
	assertLine(t, run.Console, "ofs-upper=zram:nosuch: the kernel's zram offers", "not nosuch; using zram:lzo-rle")
	if !strings.Contains(strings.Join(r.Status.Warnings, "\n"), "ofs-upper=zram:nosuch") {
		t.Errorf("status warnings %q lack the word", r.Status.Warnings)
	}
	if u.Zram.DisksizeBytes != 48<<20 {
		t.Errorf("disksize %d, want ofs-size=48M", u.Zram.DisksizeBytes)
	}
	mm := zramFill(t, r, u.Zram.MemLimitBytes)
	t.Logf("compressors offered: %s; pattern fill ratio %.1f", offered, mm.Ratio())
	if mm.Ratio() < 4 || mm.MemUsedMax > 16<<20 {
		t.Errorf("the pattern compressed %.1f times into %d bytes of RAM: want at least 4 times, under 16 MiB", mm.Ratio(), mm.MemUsedMax)
	}
	assertImageUnchanged(t, run)
}

// TestZramFallback boots an initramfs without the zram layer's files and
// ofs-upper=zram: the tmpfs layer is used, loudly, and the boot is
// degraded with the reason; the root is protected.
func TestZramFallback(t *testing.T) {
	t.Parallel()
	run := boot(t, bootCase{board: x86, words: []string{"overlayfs=yes", "ofs-upper=zram", "ofs-size=20"}})
	r := run.Report
	assertLine(t, run.Console, "DEGRADED: zram layer ofs-upper=zram not built")
	st := r.Status
	if st == nil || st.Mode != bootstatus.Degraded || st.Upper == nil || len(st.Reasons) != 1 || st.Reasons[0] != st.Upper.Fallback {
		t.Fatalf("status %+v: want degraded, the fallback's reason", st)
	}
	u := st.Upper
	if u.Kind != bootstatus.UpperRAM || u.Asked != "zram" || u.FSType != "tmpfs" || !strings.Contains(u.Fallback, "no zram device") || !strings.Contains(u.Fallback, "--zram") || st.RAM == nil {
		t.Errorf("upper %+v ram %+v: want the tmpfs layer, the reason naming --zram", u, st.RAM)
	}
	if m, ok := r.MountAt("/mnt/root-RW"); !ok || m.Source != bootstatus.TmpfsName || m.FSType != "tmpfs" {
		t.Errorf("/mnt/root-RW is %+v, want the tmpfs layer", m)
	}
	if r.WriteRoot != "ok" || r.InUpper != "present" || r.InLower != "absent" || r.WriteRO != "EROFS" {
		t.Errorf("writes: / %s, upper %s, lower %s, real root %s", r.WriteRoot, r.InUpper, r.InLower, r.WriteRO)
	}
	// What ofsctl status would say, from the same record: degraded (exit
	// 4), / still protected.
	rep, err := rootstatus.Evaluate(rootstatus.Inputs{Mountinfo: strings.NewReader(mountinfoText(r)), Status: st})
	if err != nil || rep.Mode != bootstatus.Degraded || !rep.Protected || rep.ExitCode() != rootstatus.ExitDegraded || len(rep.Reasons) != 1 {
		t.Errorf("ofsctl status: %+v, %v", rep, err)
	}
	assertImageUnchanged(t, run)
}

// mountinfoText rebuilds mountinfo lines from the probe's report.
func mountinfoText(r *bootlab.Report) string {
	var b strings.Builder
	for _, v := range r.Values["mount"] {
		b.WriteString(v + "\n")
	}
	return b.String()
}

// TestZramSystemd boots the systemd root (x86) on a zram layer: systemd
// reaches multi-user.target with no failed unit on it, writes land in
// the layer, the card is not written; the ratio of what systemd and its
// journal wrote is logged.
func TestZramSystemd(t *testing.T) {
	t.Parallel()
	l := getLab(t, x86)
	img := systemdImage(t, l)
	initrdPath, _ := l.initrd(t, variant{zram: true})
	run := runBoot(t, l.setup, bootlab.RunSpec{Initrd: initrdPath, Image: img,
		Append: []string{"root=UUID=" + bootlab.RootUUID, "overlayfs=yes", "ofs-upper=zram:lz4", "ofs-size=20", "probe.run=/bin/cat,/sys/block/zram0/mm_stat"}})
	if run.ReportErr != nil {
		t.Fatalf("probe report: %v", run.ReportErr)
	}
	assertSystemdUp(t, run)
	r := run.Report
	zramStatus(t, r, "lz4")
	if !strings.Contains(r.Fstab, "# This fstab is in RAM") {
		t.Errorf("systemd saw the real fstab:\n%s", r.Fstab)
	}
	runs := r.Runs()
	if len(runs) != 1 || runs[0].Exit != 0 {
		t.Fatalf("cat mm_stat: %+v", runs)
	}
	mm, err := zram.ParseMMStat(runs[0].Output)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after systemd's boot: zram0 holds %d bytes in %d (ratio %.2f), %d bytes of RAM", mm.OrigDataSize, mm.ComprDataSize, mm.Ratio(), mm.MemUsedTotal)
	if mm.OrigDataSize == 0 || mm.MemUsedTotal > mm.MemLimit {
		t.Errorf("mm_stat %+v: want data in the layer, RAM under the cap", mm)
	}
	assertImageUnchanged(t, run)
}
