package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// leftovers lists the temporary files in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	return m
}

func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "grubenv")
	os.WriteFile(p, []byte("old"), 0o600)
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(got) != "new" || fi.Mode().Perm() != 0o644 {
		t.Errorf("got %q mode %v, want \"new\" 0644 (the umask must not narrow it)", got, fi.Mode().Perm())
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "initrd.img")
	os.WriteFile(p, []byte("old"), 0o644)
	boom := errors.New("compressor failed")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("half of the new"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill's", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("the file is %q after a failed write, want the old content", got)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
	if err := WriteFile(filepath.Join(dir, "no/such/dir/f"), nil, 0o644); err == nil || !strings.Contains(err.Error(), "no/such/dir") {
		t.Errorf("missing folder: %v", err)
	}
}

// TestWriteReplacesLink: a symbolic link at the name is replaced, its
// target left alone.
func TestWriteReplacesLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	p := filepath.Join(dir, "fstab")
	os.Symlink(victim, p)
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("the link's target was written: %q", got)
	}
	if fi, _ := os.Lstat(p); !fi.Mode().IsRegular() {
		t.Errorf("%s is %v, want a regular file", p, fi.Mode())
	}
}

// TestWriteInConfined: the init writes the new root's etc/fstab. A root
// whose etc is a link out of it (to the card's device node, say) must
// not lead the write there. Without the confinement it does.
func TestWriteInConfined(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	// The fault: a plain path write goes through the link.
	if err := WriteFile(filepath.Join(root, "etc/fstab"), []byte("escaped"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "fstab")); err != nil {
		t.Fatalf("the fault did not show: a plain write did not follow etc out of the root (%v)", err)
	}
	os.Remove(filepath.Join(outside, "fstab"))

	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteFileIn(r, "etc/fstab", []byte("escaped"), 0o644); err == nil {
		t.Error("WriteFileIn through a link out of the root: no error")
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("WriteFileIn wrote outside the root: %v", ents)
	}
	for _, name := range []string{"../outside-fstab", "/../../fstab"} {
		WriteFileIn(r, name, []byte("x"), 0o644)
		if _, err := os.Stat(filepath.Join(filepath.Dir(root), "outside-fstab")); err == nil {
			t.Errorf("WriteFileIn(%q) wrote above the root", name)
		}
	}
}

// TestWriteInPlantedTemp: the init's former helper wrote a fixed
// temporary name (etc/fstab.ofsroot-tmp) with a following open, so a
// root holding that name as a link to a file elsewhere (or a device
// node) had it written. The exclusive random name never opens an
// existing entry.
func TestWriteInPlantedTemp(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	victim := filepath.Join(outside, "card")
	os.WriteFile(victim, []byte("precious"), 0o644)
	planted := filepath.Join(root, "etc/fstab.ofsroot-tmp")
	os.Symlink(victim, planted)

	// The fault, as the former helper did it.
	if err := os.WriteFile(planted, []byte("fstab"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "fstab" {
		t.Fatalf("the fault did not show: the planted link's target holds %q", got)
	}
	os.WriteFile(victim, []byte("precious"), 0o644)

	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteFileIn(r, "etc/fstab", []byte("fstab"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Errorf("the planted link's target was written: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/fstab")); string(got) != "fstab" {
		t.Errorf("etc/fstab = %q", got)
	}
	if l := leftovers(t, filepath.Join(root, "etc")); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Error(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
}
