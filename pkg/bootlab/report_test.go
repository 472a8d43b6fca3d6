package bootlab

import (
	"github.com/ofsroot/ofsroot/pkg/mountfs"

	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

func TestInitStart(t *testing.T) {
	got, ok := InitStart("[ 1.0] x\nofsroot: start t=2.219841 (ofsroot dev)\n")
	if !ok || got != 2.219841 {
		t.Errorf("InitStart = %v, %v", got, ok)
	}
	if _, ok := InitStart("no init here"); ok {
		t.Error("InitStart found a start in nothing")
	}
}

func TestMedianMinMax(t *testing.T) {
	for _, tc := range []struct {
		xs          []float64
		med, lo, hi float64
	}{
		{nil, 0, 0, 0},
		{[]float64{3}, 3, 3, 3},
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		if m := Median(tc.xs); m != tc.med {
			t.Errorf("Median(%v) = %v, want %v", tc.xs, m, tc.med)
		}
		if lo, hi := MinMax(tc.xs); lo != tc.lo || hi != tc.hi {
			t.Errorf("MinMax(%v) = %v %v", tc.xs, lo, hi)
		}
	}
}

func TestTimingAndSummary(t *testing.T) {
	rep := &Report{
		T:        2.9,
		MemTotal: 479657984,
		RW:       &Statfs{Bsize: 4096, Blocks: 23421},
		Status: &bootstatus.Status{
			Mode: bootstatus.Protected, Requested: "yes",
			StartedAt: 2.2, HandoverAt: 2.8,
			Steps: []bootstatus.Step{{Name: "modprobe", Seconds: 0.47}},
		},
		WriteRoot: "ok", InUpper: "present", InLower: "absent", WriteRO: "EROFS",
	}
	for _, l := range []string{
		"29 1 0:23 / / rw,relatime - overlay overlayfs-root rw",
		"25 29 254:0 / /mnt/root-RO ro,relatime - ext4 /dev/vda ro",
		"26 29 0:22 / /mnt/root-RW rw,relatime - tmpfs tmpfs-root rw,size=93684k",
	} {
		m, err := mountfs.ParseMountinfoLine(l)
		if err != nil {
			t.Fatal(err)
		}
		rep.Mounts = append(rep.Mounts, m)
	}
	run := &Run{Report: rep, Console: &Console{Log: "/x/console.log"}, Image: "/x/img", ImageBefore: "ab", ImageAfter: "ab"}
	tm, err := TimingOf(run)
	if err != nil {
		t.Fatal(err)
	}
	if tm.InitStart != 2.2 || tm.Probe != 2.9 || len(tm.Steps) != 1 || tm.Total() < 0.69 || tm.Total() > 0.71 {
		t.Errorf("timing = %+v", tm)
	}
	sum := run.Summary()
	for _, want := range []string{"protected (overlayfs=yes)", "overlay overlayfs-root (read-write)", "/dev/vda at /mnt/root-RO (read-only)", "91.5 MiB = 20% of 457.4 MiB RAM", "in upper: present", "EROFS", "unchanged"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	run.ImageAfter = "cd"
	if !strings.Contains(run.Summary(), "CHANGED") {
		t.Error("a changed image is not reported")
	}

	// Without a status the console's start line is used.
	rep.Status = nil
	run.Console.Text = "ofsroot: start t=2.5\n"
	if tm, err := TimingOf(run); err != nil || tm.InitStart != 2.5 {
		t.Errorf("TimingOf without status = %+v, %v", tm, err)
	}
	run.Console.Text = ""
	if _, err := TimingOf(run); err == nil {
		t.Error("no start anywhere: want an error")
	}
}
