package switchroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func TestFindInitIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(root+"/sbin", 0o755)
	os.MkdirAll(root+"/bin", 0o755)
	os.MkdirAll(root+"/etc/init", 0o755)               // a folder, not an init
	os.WriteFile(root+"/bin/init", []byte("x"), 0o644) // not executable
	os.WriteFile(root+"/bin/sh", []byte("x"), 0o755)
	got, err := FindInitIn(root, DefaultInits)
	if err != nil || got != "/bin/sh" {
		t.Fatalf("got %q, %v", got, err)
	}
	// Links resolve inside the root, the way exec will see them after
	// the switch: one climbing out lands on the root's own file.
	os.Remove(root + "/bin/sh")
	os.MkdirAll(root+"/usr/bin", 0o755)
	os.WriteFile(root+"/usr/bin/true", []byte("x"), 0o755)
	os.Symlink("../../../../../../../usr/bin/true", root+"/sbin/climb")
	if got, err := FindInitIn(root, []string{"/sbin/climb"}); err != nil || got != "/sbin/climb" {
		t.Errorf("climbing link: %q, %v", got, err)
	}
	// A link to a host executable the root does not have: taking it
	// would mean the host's file was looked at.
	host, _ := filepath.Abs(os.Args[0])
	os.Symlink(host, root+"/sbin/hostlink")
	if _, err := FindInitIn(root, []string{"/sbin/hostlink"}); err == nil {
		t.Errorf("a link to the host's %s was taken", host)
	}
	_, err = FindInitIn(root, DefaultInits)
	for _, s := range []string{"/sbin/init (", "/etc/init (not a regular file)", "/bin/init (not executable)", "/bin/sh ("} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v lacks %q", err, s)
		}
	}
}

// TestRemoveTreeStaysOnItsFilesystem: freeing the initramfs must never
// delete files of the new root mounted beneath it.
func TestRemoveTreeStaysOnItsFilesystem(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	fs := t.TempDir()
	if err := unix.Mount("old", fs, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(fs, unix.MNT_DETACH)
	// The tree to free, and beside it on the same filesystem a folder
	// and a file that symbolic links in the tree point to: the device
	// check cannot save them, only not following links does.
	top := fs + "/initramfs"
	os.MkdirAll(top+"/a/b", 0o755)
	os.WriteFile(top+"/a/b/f", nil, 0o644)
	os.MkdirAll(fs+"/outside", 0o755)
	os.WriteFile(fs+"/outside/keep", []byte("keep"), 0o644)
	os.Symlink(fs+"/outside", top+"/link")
	os.Symlink(fs+"/outside/keep", top+"/filelink")
	// Nested, as in a degraded boot where the new root is /mnt/root-RO.
	os.MkdirAll(top+"/newroot/inner", 0o755)
	if err := unix.Mount("new", top+"/newroot/inner", "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(top+"/newroot/inner/keep", nil, 0o644)
	var st unix.Stat_t
	unix.Stat(top, &st)
	if err := removeTree(top, st.Dev, true); err != nil {
		t.Error(err)
	}
	entries, _ := os.ReadDir(top)
	if len(entries) != 1 || entries[0].Name() != "newroot" {
		t.Errorf("left %v", entries)
	}
	if _, err := os.Stat(filepath.Join(top, "newroot/inner/keep")); err != nil {
		t.Errorf("the new root lost a file: %v", err)
	}
	if b, err := os.ReadFile(fs + "/outside/keep"); err != nil || string(b) != "keep" {
		t.Errorf("a file a symbolic link pointed to was removed or changed: %q, %v", b, err)
	}
	if _, err := os.Stat(fs + "/outside"); err != nil {
		t.Errorf("a folder a symbolic link pointed to was removed: %v", err)
	}
}
