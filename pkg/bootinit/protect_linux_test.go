package bootinit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/blockdev"
	"github.com/ofsroot/ofsroot/pkg/bootlab"
	"github.com/ofsroot/ofsroot/pkg/cmdline"
	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func errOK(err error) string {
	if err == nil {
		return "present"
	}
	if errors.Is(err, os.ErrNotExist) {
		return "absent"
	}
	return err.Error()
}

// copyImage gives each case its own copy of a damaged image.
func copyImage(t *testing.T, img string) string {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "copy.img")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// uncleanRoot is the test root after a power cut during a writable
// boot: the journal holds a new file and a changed fstab.
func uncleanRoot(t *testing.T) string {
	t.Helper()
	img, loop := testRoot(t)
	detach(loop)
	err := bootlab.MakeUnclean(img, 0, func(dir string) error {
		if err := os.WriteFile(dir+"/etc/after-the-cut", []byte("new\n"), 0o644); err != nil {
			return err
		}
		return os.WriteFile(dir+"/etc/fstab", []byte("# changed just before the cut\n"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(img)
	st, ok, err := blockdev.ReadExtState(f)
	f.Close()
	if !ok || err != nil || !st.NeedsRecovery {
		t.Fatalf("the image does not need recovery: %+v %v %v", st, ok, err)
	}
	return img
}

// TestUncleanJournal: a read-only mount of a plain device replays the
// journal and so writes it (the fault); a protected boot write-protects
// the device, mounts without replay (noload), says so loudly, and the
// device's bytes stay the same.
func TestUncleanJournal(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	unclean := uncleanRoot(t)

	t.Run("fault: ro mount of a writable device replays", func(t *testing.T) {
		img := copyImage(t, unclean)
		before := sha(t, img)
		loop := attach(t, img)
		dir := t.TempDir()
		if err := unix.Mount(loop, dir, "ext4", unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir + "/etc/after-the-cut"); err != nil {
			t.Errorf("the replay did not bring the file back: %v", err)
		}
		settle(t, loop, dir)
		if sha(t, img) == before {
			t.Errorf("a read-only mount replayed the journal without writing the device? the fault this guards against is gone")
		}
	})

	t.Run("write-protected without noload: the kernel refuses", func(t *testing.T) {
		img := copyImage(t, unclean)
		loop := attach(t, img)
		if err := blockdev.SetReadOnly(loop, true); err != nil {
			t.Fatal(err)
		}
		err := unix.Mount(loop, t.TempDir(), "ext4", unix.MS_RDONLY, "")
		if err == nil {
			t.Fatalf("ext4 mounted a write-protected device that needs recovery")
		}
		t.Logf("mount without noload: %v (as expected)", err)
	})

	t.Run("protected boot", func(t *testing.T) {
		img := copyImage(t, unclean)
		before := sha(t, img)
		loop := attach(t, img)
		cfg := cmdline.Default()
		cfg.Overlay = cmdline.OverlayOn
		b, _ := testBoot(t, loop, cfg)
		if err := b.x.Run(b.writeProtect()); err != nil {
			t.Fatal(err)
		}
		if err := b.x.Run(b.mountRealRoot(b.paths.ro, true)); err != nil {
			t.Fatal(err)
		}
		if !b.noLoad || !strings.Contains(b.status.Root.Options, "noload") {
			t.Errorf("mounted with %q, noLoad %v", b.status.Root.Options, b.noLoad)
		}
		if w := strings.Join(b.status.Warnings, "\n"); !strings.Contains(w, "UNCLEAN ROOT") || !strings.Contains(w, "overlayfs=no") || !strings.Contains(w, "e2fsck") {
			t.Errorf("warnings do not say what happened and how to repair: %q", w)
		}
		// Which of the last changes show without the replay depends
		// on what the kernel had written in place before the cut.
		_, err := os.Stat(b.paths.ro + "/etc/after-the-cut")
		t.Logf("without replay, the file written just before the cut: %v", errOK(err))
		if _, err := os.ReadFile(b.paths.ro + "/sbin/real-init"); err != nil {
			t.Errorf("the root does not read without replay: %v", err)
		}
		if ro, _ := blockdev.IsReadOnly(loop); !ro {
			t.Errorf("device not write-protected")
		}
		settle(t, loop, b.paths.ro)
		if sha(t, img) != before {
			t.Errorf("the protected boot wrote the device")
		}
	})
}

// TestDamagedInode: reading a damaged inode on a read-only mount makes
// ext4 record the error in the superblock of a writable device (the
// fault); on the write-protected device nothing is written and the rest
// of the root still reads.
func TestDamagedInode(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	detach(loop)
	if err := bootlab.DamageInode(img, 0, "/sbin/real-init"); err != nil {
		t.Fatal(err)
	}
	for _, protect := range []bool{false, true} {
		name := map[bool]string{false: "fault: plain ro mount records the error", true: "protected"}[protect]
		t.Run(name, func(t *testing.T) {
			img := copyImage(t, img)
			before := sha(t, img)
			loop := attach(t, img)
			cfg := cmdline.Default()
			if protect {
				cfg.Overlay = cmdline.OverlayOn
			}
			b, _ := testBoot(t, loop, cfg)
			steps := []Step{b.mountRealRoot(b.paths.ro, true)}
			if protect {
				steps = append([]Step{b.writeProtect()}, steps...)
			}
			if err := b.x.Run(steps...); err != nil {
				t.Fatal(err)
			}
			if _, err := os.ReadFile(b.paths.ro + "/sbin/real-init"); err == nil {
				t.Errorf("the damaged inode read fine: the damage did not take")
			}
			if _, err := os.ReadFile(b.paths.ro + "/etc/fstab"); err != nil {
				t.Errorf("the rest of the root does not read: %v", err)
			}
			settle(t, loop, b.paths.ro)
			changed := sha(t, img) != before
			if protect && changed {
				t.Errorf("the protected boot wrote the device (error record)")
			}
			if !protect && !changed {
				t.Errorf("a plain ro mount did not record the error: the fault this guards against is gone")
			}
		})
	}
}

// TestErrorsPanicOverridden: a superblock that says errors=panic is
// mounted with errors=continue under protection, unless rootflags names
// errors= itself. (Only the options are checked here: reading a damaged
// inode with errors=panic would panic this host's kernel; the QEMU
// campaign does that part, tests/hostile_test.go TestHostileErrors.)
func TestErrorsPanicOverridden(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	img, loop := testRoot(t)
	detach(loop)
	if err := bootlab.Debugfs(img, 0, "set_super_value errors 3"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rootflags, want string
	}{
		{"", "errors=continue"},
		{"errors=remount-ro", "errors=remount-ro"},
	} {
		loop := attach(t, copyImage(t, img))
		cfg := cmdline.Default()
		cfg.Overlay, cfg.RootFlags = cmdline.OverlayOn, tc.rootflags
		b, _ := testBoot(t, loop, cfg)
		// As the init does: the mount step is made once the device has
		// been looked at.
		b.x.Run(b.writeProtect())
		if err := b.x.Run(b.mountRealRoot(b.paths.ro, true)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.status.Root.Options, tc.want) || strings.Count(b.status.Root.Options, "errors=") != 1 {
			t.Errorf("rootflags %q: mounted with %q, want %s", tc.rootflags, b.status.Root.Options, tc.want)
		}
		settle(t, loop, b.paths.ro)
	}
}
