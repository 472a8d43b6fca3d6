package bootinit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

// hostileFstabs are the /etc/fstab entries a card may hold, each made in
// root's etc, with what the rewritten fstab must then hold.
var hostileFstabs = []struct {
	name  string
	make  func(etc string) error
	want  string // in the rewritten fstab
	warns bool   // the init must say it ignored the file
}{
	{"fifo", func(etc string) error { return unix.Mkfifo(etc+"/fstab", 0o644) }, "/mnt/root-RO ext4 ro", true},
	{"link to /dev/zero", func(etc string) error { return os.Symlink("/dev/zero", etc+"/fstab") }, "/mnt/root-RO ext4 ro", false},
	{"char device", func(etc string) error {
		return unix.Mknod(etc+"/fstab", unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5)))
	}, "/mnt/root-RO ext4 ro", true},
	{"huge", func(etc string) error {
		f, err := os.Create(etc + "/fstab")
		if err == nil {
			err = f.Truncate(fstabLimit + 1)
			f.Close()
		}
		return err
	}, "/mnt/root-RO ext4 ro", true},
	{"folder", func(etc string) error { return os.Mkdir(etc+"/fstab", 0o755) }, "", true},
	{"absolute link", func(etc string) error {
		if err := os.WriteFile(etc+"/fstab.real", []byte("LABEL=data /data ext4 defaults 0 2\n"), 0o644); err != nil {
			return err
		}
		return os.Symlink("/etc/fstab.real", etc+"/fstab")
	}, "LABEL=data /data ext4 defaults 0 2", false},
	{"link climbing out", func(etc string) error {
		return os.Symlink("../../../../../../../../proc/self/mounts", etc+"/fstab")
	}, "/mnt/root-RO ext4 ro", false},
}

// TestRewriteHostileFstab: whatever /etc/fstab is, the step ends (no
// hang, no unbounded read) with an fstab that mounts the real root
// read-only, and never takes the initramfs's own files for the root's.
func TestRewriteHostileFstab(t *testing.T) {
	for _, tc := range hostileFstabs {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.name, "device") && os.Getuid() != 0 {
				t.Skip("mknod needs root")
			}
			cfg := cmdline.Default()
			cfg.Overlay, cfg.Root = cmdline.OverlayOn, "/dev/vda"
			b, _ := testBoot(t, "/dev/vda", cfg)
			b.fstype = "ext4"
			os.MkdirAll(b.paths.newRoot+"/etc", 0o755)
			if err := tc.make(b.paths.newRoot + "/etc"); err != nil {
				t.Fatal(err)
			}
			err := b.x.Run(b.rewriteFstab())
			if tc.want == "" {
				if err == nil && len(b.x.Steps) == 1 && b.x.Steps[0].Error == "" {
					t.Errorf("a folder as fstab was replaced without complaint")
				}
				return
			}
			got, rerr := os.ReadFile(filepath.Join(b.paths.newRoot, "etc/fstab"))
			if rerr != nil || !strings.Contains(string(got), tc.want) {
				t.Errorf("rewritten fstab (%v, step %+v):\n%s\nwant %q", rerr, b.x.Steps, got, tc.want)
			}
			if strings.Contains(string(got), "proc /proc") || strings.Contains(string(got), "sysfs") {
				t.Errorf("the host's mount table became the fstab:\n%s", got)
			}
			if warned := strings.Contains(strings.Join(b.status.Warnings, "\n"), "ignored the root's /etc/fstab"); warned != tc.warns {
				t.Errorf("warned %v, want %v: %q", warned, tc.warns, b.status.Warnings)
			}
		})
	}
}

// TestGuardHostileFstab: in a degraded boot a refused fstab is shadowed
// by an empty one, and an absolute link is guarded where it points
// inside the root.
func TestGuardHostileFstab(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	for _, tc := range hostileFstabs {
		if tc.name == "folder" || tc.name == "link to /dev/zero" || tc.name == "link climbing out" {
			continue // nothing to shadow: the real init finds no fstab
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := cmdline.Default()
			cfg.Overlay = cmdline.OverlayOn
			b, _ := testBoot(t, "/dev/vda", cfg)
			os.MkdirAll(b.paths.ro+"/etc", 0o755)
			if err := tc.make(b.paths.ro + "/etc"); err != nil {
				t.Fatal(err)
			}
			if tc.name == "absolute link" {
				os.WriteFile(b.paths.ro+"/etc/fstab.real", []byte("/dev/vda / ext4 defaults 0 1\n"), 0o644)
			}
			if err := b.x.Run(b.guardDegradedFstab()); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(b.paths.ro+"/etc/fstab", unix.MNT_DETACH)
			defer unix.Unmount(b.paths.ro+"/etc/fstab.real", unix.MNT_DETACH)
			read := "/etc/fstab"
			if tc.name == "absolute link" {
				read = "/etc/fstab.real" // where the link leads inside the root
			}
			got, err := os.ReadFile(b.paths.ro + read)
			if err != nil {
				t.Fatal(err)
			}
			want := "was refused"
			if tc.name == "absolute link" {
				want = "/dev/vda / ext4 ro 0 0"
			}
			if !strings.Contains(string(got), want) {
				t.Errorf("the real init would read:\n%s\nwant %q", got, want)
			}
		})
	}
}

func TestRAMSizeCapped(t *testing.T) {
	const M = 1 << 20
	saved := MeminfoFile
	defer func() { MeminfoFile = saved }()
	MeminfoFile = filepath.Join(t.TempDir(), "meminfo")
	for _, tc := range []struct {
		line       string
		mem, avail uint64
		want       uint64
	}{
		{"ofs-size=20", 500 * M, 400 * M, 100 * M},                    // under the cap
		{"ofs-size=90", 200 * M, 150 * M, 130 * M},                    // 10% of MemTotal kept
		{"ofs-size=4G", 200 * M, 150 * M, 130 * M},                    // bytes too
		{"ofs-size=100", 48 * M, 20 * M, 12 * M},                      // 8M kept
		{"ofs-size=100 ofs-size-reserve=0", 100 * M, 50 * M, 100 * M}, // lifted
		{"ofs-size=100 ofs-size-reserve=16M", 100 * M, 50 * M, 34 * M},
	} {
		os.WriteFile(MeminfoFile, []byte(fmt.Sprintf("MemTotal: %d kB\nMemFree: 1 kB\nMemAvailable: %d kB\n", tc.mem>>10, tc.avail>>10)), 0o644)
		cfg, _ := cmdline.Parse(tc.line)
		b, _ := testBoot(t, "/dev/vda", cfg)
		if got := b.ramSize(tc.mem); got != tc.want {
			t.Errorf("%s on %d MiB (%d available): %d MiB, want %d MiB", tc.line, tc.mem/M, tc.avail/M, got/M, tc.want/M)
		}
	}
}

func TestPanicTimeout(t *testing.T) {
	saved := PanicFile
	defer func() { PanicFile = saved }()
	PanicFile = filepath.Join(t.TempDir(), "panic")
	os.WriteFile(PanicFile, []byte("0\n"), 0o644)
	for _, tc := range []struct {
		line, want string
	}{
		{"root=/dev/vda", "10"},
		{"root=/dev/vda panic=0", "untouched"},
	} {
		os.WriteFile(PanicFile, []byte("untouched"), 0o644)
		cfg, _ := cmdline.Parse(tc.line)
		b, _ := testBoot(t, "/dev/vda", cfg)
		if err := b.x.Run(b.panicTimeout()); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(PanicFile); string(got) != tc.want {
			t.Errorf("%s: kernel.panic %q, want %q", tc.line, got, tc.want)
		}
	}
}
