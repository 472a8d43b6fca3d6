package ubootenv

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// loopDevice attaches a file of size bytes to a loop device, or skips.
func loopDevice(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, bytes.Repeat([]byte{0}, int(size)), 0o644)
	return testenv.Loop(t, img)
}

// TestBlockDevice: a redundant environment at the end of a block device
// (negative offsets, as boards with the environment behind the last
// partition of an eMMC have it), written by this package and by
// fw_setenv in turn, fsync'ed, and read by both.
func TestBlockDevice(t *testing.T) {
	dev := loopDevice(t, 4<<20)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "fw_env.config")
	os.WriteFile(cfgPath, []byte(dev+" -0x4000 0x2000\n"+dev+" -0x2000 0x2000\n"), 0o644)
	cfg, err := ReadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg, Options{Empty: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Copies(); c[0].Offset != 4<<20-0x4000 || c[1].Offset != 4<<20-0x2000 || c[0].Medium != MediumFile {
		t.Fatalf("copies %+v", c)
	}
	e := s.Env()
	e.Set("bootcmd", "run distro_bootcmd")
	e.Set("overlayfs", "yes")
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg, Options{})
	mustGet(t, s, "overlayfs", "yes")
	if s.Current() != 1 {
		t.Errorf("the first save went to copy %d, want 1 (the one not in use)", s.Current())
	}
	testenv.NeedTools(t, "fw_printenv")
	out, err := exec.Command("fw_printenv", "-c", cfgPath, "overlayfs").CombinedOutput()
	if err != nil || string(out) != "overlayfs=yes\n" {
		t.Errorf("fw_printenv: %v %q", err, out)
	}
	if out, err := exec.Command("fw_setenv", "-c", cfgPath, "overlayfs", "no").CombinedOutput(); err != nil {
		t.Fatalf("fw_setenv: %v %s", err, out)
	}
	s = mustOpen(t, cfg, Options{})
	mustGet(t, s, "overlayfs", "no")
	mustGet(t, s, "bootcmd", "run distro_bootcmd")
	if s.Current() != 0 {
		t.Errorf("fw_setenv's save is in copy %d, want 0", s.Current())
	}
}
