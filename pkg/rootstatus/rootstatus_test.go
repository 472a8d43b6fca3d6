package rootstatus

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

const (
	miProtected = `21 1 0:20 / / rw,relatime - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work
22 21 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,size=10k
23 21 254:0 / /mnt/root-RO ro,relatime - ext4 /dev/vda ro
24 21 0:19 / /mnt/root-RW rw,relatime - tmpfs tmpfs-root rw,size=102400k
`
	miLowerRW = `21 1 0:20 / / rw,relatime - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work
23 21 254:0 / /mnt/root-RO rw,relatime - ext4 /dev/vda rw
24 21 0:19 / /mnt/root-RW rw,relatime - tmpfs tmpfs-root rw,size=102400k
`
	miSuperRW = `21 1 0:20 / / rw,relatime - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work
23 21 254:0 / /mnt/root-RO ro,relatime - ext4 /dev/vda rw
24 21 0:19 / /mnt/root-RW rw,relatime - tmpfs tmpfs-root rw,size=102400k
`
	miPlainRO  = "21 1 254:0 / / ro,relatime - ext4 /dev/vda ro\n22 21 0:5 / /dev rw - devtmpfs devtmpfs rw\n"
	miPlainRW  = "21 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	miOther    = "21 1 0:20 / / rw - overlay overlay rw,lowerdir=/media/root-ro,upperdir=/media/root-rw/overlay,workdir=/media/root-rw/work\n"
	miNoLower  = "21 1 0:20 / / rw - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work\n"
	miShadowed = "21 1 254:0 / / rw - ext4 /dev/vda rw\n30 21 0:20 / / rw,relatime - overlay overlayfs-root rw,lowerdir=/mnt/root-RO,upperdir=/mnt/root-RW/upper,workdir=/mnt/root-RW/work\n31 30 254:0 / /mnt/root-RO ro - ext4 /dev/vda ro\n"
)

func statfs(string) (Statfs, error) {
	return Statfs{Bsize: 4096, Blocks: 25600, Bfree: 25344, Bavail: 25344, Files: 1000, Ffree: 990}, nil
}

func TestEvaluate(t *testing.T) {
	prot := &bootstatus.Status{Mode: bootstatus.Protected, Requested: "yes", Root: bootstatus.Root{Device: "/dev/vda", UUID: "u"}}
	plain := &bootstatus.Status{Mode: bootstatus.Plain, Requested: "no"}
	degr := &bootstatus.Status{Mode: bootstatus.Degraded, Requested: "yes", Reasons: []string{"mount -t overlay: no such device"}}
	sandbox := &bootstatus.Status{Mode: bootstatus.Sandbox}
	for _, c := range []struct {
		name     string
		mi       string
		st       *bootstatus.Status
		mode     bootstatus.Mode
		exit     int
		reasons  []string // substrings, in order
		warnings []string
		ram      bool
		device   string
		readOnly bool
	}{
		{"protected", miProtected, prot, bootstatus.Protected, 0, nil, nil, true, "/dev/vda", true},
		{"protected, no status file", miProtected, nil, bootstatus.Protected, 0, nil, nil, true, "/dev/vda", true},
		{"lower remounted rw", miLowerRW, prot, bootstatus.Degraded, 4, []string{"mounted read-write"}, nil, true, "/dev/vda", false},
		{"filesystem rw under a ro mount", miSuperRW, prot, bootstatus.Protected, 0, nil, []string{"read-write underneath"}, true, "/dev/vda", true},
		{"status says plain but overlay", miProtected, plain, bootstatus.Protected, 0, nil, []string{"status file says plain"}, true, "/dev/vda", true},
		{"plain", miPlainRO, plain, bootstatus.Plain, 3, []string{"overlayfs=no"}, nil, false, "/dev/vda", true},
		{"plain without ofsroot", miPlainRW, nil, bootstatus.Plain, 3, []string{"no status file"}, nil, false, "/dev/vda", false},
		{"degraded", miPlainRO, degr, bootstatus.Degraded, 4, []string{"no such device"}, nil, false, "/dev/vda", true},
		{"degraded and writable", miPlainRW, degr, bootstatus.Degraded, 4, []string{"no such device", "read-write"}, nil, false, "/dev/vda", false},
		{"status lies: protected on ext4", miPlainRW, prot, bootstatus.Degraded, 4, []string{"says protected, but the kernel has ext4", "read-write"}, nil, false, "/dev/vda", false},
		{"someone else's overlay", miOther, nil, bootstatus.Degraded, 4, []string{"not the real root"}, nil, false, "", false},
		{"lower not visible", miNoLower, prot, bootstatus.Degraded, 4, []string{"nothing is mounted at /mnt/root-RO"}, nil, false, "", false},
		{"sandbox", miOther, sandbox, bootstatus.Sandbox, 0, nil, nil, false, "", false},
		{"top mount at / wins", miShadowed, prot, bootstatus.Protected, 0, nil, nil, false, "/dev/vda", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Evaluate(Inputs{Mountinfo: strings.NewReader(c.mi), Status: c.st, StatusErr: os.ErrNotExist, StatusFile: "/run/ofsroot/status.json", Statfs: statfs})
			if err != nil {
				t.Fatal(err)
			}
			if r.Mode != c.mode || r.ExitCode() != c.exit || r.Protected != (c.exit == 0) {
				t.Errorf("mode %s exit %d protected %v, want %s %d", r.Mode, r.ExitCode(), r.Protected, c.mode, c.exit)
			}
			matchAll(t, "reasons", r.Reasons, c.reasons)
			matchAll(t, "warnings", r.Warnings, c.warnings)
			if (r.RAM != nil) != c.ram {
				t.Errorf("RAM = %+v, want present=%v", r.RAM, c.ram)
			}
			if r.RAM != nil {
				want := RAMUse{Mount: "/mnt/root-RW", Source: "tmpfs-root", SizeBytes: 100 << 20, UsedBytes: 1 << 20, AvailBytes: 99 << 20, Inodes: 1000, InodesUsed: 10, UsePercent: 1, InodePercent: 1}
				if *r.RAM != want {
					t.Errorf("RAM %+v, want %+v", *r.RAM, want)
				}
			}
			switch {
			case c.device == "" && r.RealRoot != nil:
				t.Errorf("real root %+v, want none", r.RealRoot)
			case c.device != "" && (r.RealRoot == nil || r.RealRoot.Device != c.device || r.RealRoot.ReadOnly != c.readOnly):
				t.Errorf("real root %+v, want %s read-only=%v", r.RealRoot, c.device, c.readOnly)
			}
			var b strings.Builder
			r.Text(&b)
			if !strings.Contains(b.String(), "mode:       "+string(c.mode)+"\n") {
				t.Errorf("text:\n%s", b.String())
			}
		})
	}
}

func matchAll(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s %q, want %d matching %q", what, got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

func TestEvaluateNeedsRoot(t *testing.T) {
	if _, err := Evaluate(Inputs{Mountinfo: strings.NewReader("")}); err == nil {
		t.Error("no / accepted")
	}
}

// TestGatherLive reads this machine's own mount table: whatever the
// host is, the answer must be a mode and agree with its exit code.
func TestGatherLive(t *testing.T) {
	r, err := Gather(Sources{Mountinfo: "/proc/self/mountinfo", StatusFile: t.TempDir() + "/none.json"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode == "" || r.Kernel.RootFSType == "" {
		t.Errorf("%+v", r)
	}
	if _, err := Gather(Sources{Mountinfo: "/nonexistent"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing mountinfo: %v", err)
	}
}

// TestEvaluateUpperFallback: a persistent layer that gave way to RAM is
// degraded (exit 4) with the init's reason, though / is protected.
func TestEvaluateUpperFallback(t *testing.T) {
	reason := "persistent layer ofs-upper=LABEL=up not used: device not found"
	st := &bootstatus.Status{Mode: bootstatus.Degraded, Requested: "yes", Reasons: []string{reason},
		Upper: &bootstatus.Upper{Kind: bootstatus.UpperRAM, Asked: "LABEL=up", Fallback: reason}}
	r, err := Evaluate(Inputs{Mountinfo: strings.NewReader(miProtected), Status: st, StatusFile: "s", Statfs: statfs})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != bootstatus.Degraded || r.ExitCode() != ExitDegraded || !r.Protected || len(r.Warnings) != 0 {
		t.Errorf("mode %s exit %d protected %v warnings %q", r.Mode, r.ExitCode(), r.Protected, r.Warnings)
	}
	matchAll(t, "reasons", r.Reasons, []string{reason})
	// Its lower read-write is degraded for that reason, not protected.
	r, _ = Evaluate(Inputs{Mountinfo: strings.NewReader(miLowerRW), Status: st, StatusFile: "s", Statfs: statfs})
	if r.Mode != bootstatus.Degraded || r.Protected {
		t.Errorf("lower rw: mode %s protected %v", r.Mode, r.Protected)
	}
}
