package blockdev

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func extSuper(incompat uint32, state uint16, errors, lastOrphan uint32) []byte {
	img := make([]byte, 4096)
	sb := img[extSuperOffset:]
	binary.LittleEndian.PutUint16(sb[56:], 0xEF53)
	binary.LittleEndian.PutUint16(sb[extSuperStateOffset:], state)
	binary.LittleEndian.PutUint32(sb[96:], incompat)
	binary.LittleEndian.PutUint32(sb[extSuperErrorCount:], errors)
	binary.LittleEndian.PutUint32(sb[extSuperLastOrphan:], lastOrphan)
	return img
}

func TestReadExtState(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  []byte
		want ExtState
		ok   bool
	}{
		{"clean", extSuper(0x2|0x40, 1, 0, 0), ExtState{}, true},
		{"needs recovery", extSuper(0x2|extIncompatRecover, 1, 0, 0), ExtState{NeedsRecovery: true}, true},
		{"errors", extSuper(0x2, 1|extStateError, 3, 0), ExtState{HasErrors: true, ErrorCount: 3}, true},
		{"orphans", extSuper(0x2, 1, 0, 12), ExtState{Orphans: true}, true},
		{"errors=panic", func() []byte { b := extSuper(0x2, 1, 0, 0); b[extSuperOffset+extSuperErrors] = 3; return b }(), ExtState{ErrorsPanic: true}, true},
		{"not ext", make([]byte, 4096), ExtState{}, false},
		{"short", make([]byte, 1100), ExtState{}, false},
	} {
		got, ok, err := ReadExtState(bytes.NewReader(tc.img))
		if err != nil || ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v %v; want %+v %v", tc.name, got, ok, err, tc.want, tc.ok)
		}
	}
}

// TestReadExtStateMkfs reads a real image: mkfs.ext4 makes it clean,
// debugfs marks it as needing recovery.
func TestReadExtStateMkfs(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: run scripts/setup-host.sh", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	read := func() ExtState {
		f, _ := os.Open(img)
		defer f.Close()
		st, ok, err := ReadExtState(f)
		if !ok || err != nil {
			t.Fatalf("%v %v", ok, err)
		}
		return st
	}
	if st := read(); st != (ExtState{}) {
		t.Errorf("fresh: %+v", st)
	}
	if out, err := exec.Command("debugfs", "-w", "-R", "feature needs_recovery", img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	if st := read(); !st.NeedsRecovery {
		t.Errorf("after debugfs: %+v", st)
	}
}

// TestSetReadOnly: with the flag set, the device cannot be opened for
// writing; without it, it can (so the test can fail).
func TestSetReadOnly(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a loop device (CI runs as root)")
	}
	img := filepath.Join(t.TempDir(), "dev.img")
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	defer SetReadOnly(loop, false) // the kernel keeps the flag across attachments
	for _, ro := range []bool{false, true, false} {
		if err := SetReadOnly(loop, ro); err != nil {
			t.Fatal(err)
		}
		if got, err := IsReadOnly(loop); err != nil || got != ro {
			t.Errorf("IsReadOnly = %v, %v; want %v", got, err, ro)
		}
		// Depending on the kernel the open or the write is refused.
		f, err := os.OpenFile(loop, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.Write(make([]byte, 512))
		}
		if ro && err == nil {
			t.Errorf("wrote to a write-protected device")
		}
		if !ro && err != nil {
			t.Errorf("cannot write the writable device: %v", err)
		}
		if f != nil {
			f.Close()
		}
	}
}
