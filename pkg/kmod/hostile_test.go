package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/pkg/rootfile"
)

// TestHostileTreeFiles: the stale-initramfs fallback reads a module tree
// of the root it boots, which may be hostile. Each file it reads that is
// a FIFO must be refused, not opened: opening a FIFO for reading waits
// for a writer, for ever in PID 1. (Before the reads went through
// openFile, every case here hung.)
func TestHostileTreeFiles(t *testing.T) {
	// As in the init: no decoder, so a compressed module's facts come
	// from modules.dep.
	saved := decompressors
	SetDecompressors(nil)
	t.Cleanup(func() { SetDecompressors(saved) })
	for _, name := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo", "modules.dep", "kernel/fs/overlay/overlay.ko"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "lib/modules/6.1.0-test")
			ko := filepath.Join(dir, "kernel/fs/overlay/overlay.ko.xz")
			if name == "kernel/fs/overlay/overlay.ko" {
				ko = filepath.Join(dir, name) // a plain module file: its .modinfo is read
			}
			if err := os.MkdirAll(filepath.Dir(ko), 0o755); err != nil {
				t.Fatal(err)
			}
			if name != "kernel/fs/overlay/overlay.ko" {
				os.WriteFile(ko, []byte("not read: compressed, its facts come from modules.dep"), 0o644)
				os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/fs/overlay/overlay.ko.xz:\n"), 0o644)
			}
			p := filepath.Join(dir, name)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				tree, err := OpenTree(root, "6.1.0-test")
				if err == nil {
					_, err = tree.Plan([]string{"overlay"})
				}
				done <- err
			}()
			select {
			case err := <-done:
				// A module file that is not a regular file is not
				// indexed at all (the walk lists regular files only).
				if !errors.Is(err, rootfile.ErrNotRegular) && !(name == "kernel/fs/overlay/overlay.ko" && err != nil) {
					t.Errorf("a FIFO at %s: %v, want a refusal (ErrNotRegular)", name, err)
				}
			case <-time.After(30 * time.Second):
				// Unblock the reader so the test binary can end.
				if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
					f.Close()
				}
				t.Fatalf("reading a tree whose %s is a FIFO hung", name)
			}
		})
	}
}
