package store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/sandbox"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "fw1", "820bd4e3-2", "my_fw", "0"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "A", "a/b", "..", "a b", "abcdefghijabcdefghijabcdefghijabc"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q): no error", bad)
		}
	}
}

func TestHashFirmware(t *testing.T) {
	dir := t.TempDir()
	fw := filepath.Join(dir, "fw")
	os.MkdirAll(filepath.Join(fw, "etc"), 0o755)
	os.WriteFile(filepath.Join(fw, "etc/a"), []byte("1"), 0o644)
	os.Symlink("a", filepath.Join(fw, "etc/link"))
	h1, kind, err := HashFirmware(fw)
	if err != nil || kind != KindDir || len(h1) != 64 {
		t.Fatalf("HashFirmware(folder) = %q %q %v", h1, kind, err)
	}
	if h, _, _ := HashFirmware(fw); h != h1 {
		t.Error("the same folder hashes differently")
	}
	for _, change := range []func(){
		func() { os.WriteFile(filepath.Join(fw, "etc/a"), []byte("2"), 0o644) },
		func() { os.Chmod(filepath.Join(fw, "etc/a"), 0o600) },
		func() { os.Remove(filepath.Join(fw, "etc/link")); os.Symlink("b", filepath.Join(fw, "etc/link")) },
		func() { os.Mkdir(filepath.Join(fw, "new"), 0o755) },
		func() { os.Rename(filepath.Join(fw, "etc/a"), filepath.Join(fw, "etc/b")) },
	} {
		change()
		h, _, err := HashFirmware(fw)
		if err != nil || h == h1 {
			t.Errorf("a change left the hash as it was (%v)", err)
		}
		h1 = h
	}
	img := filepath.Join(dir, "fw.img")
	os.WriteFile(img, []byte("not really ext4"), 0o644)
	// sha256 of the file's bytes, as sha256sum prints it.
	sum := sha256.Sum256([]byte("not really ext4"))
	if h, kind, err := HashFirmware(img); err != nil || kind != KindImage || h != hex.EncodeToString(sum[:]) {
		t.Errorf("HashFirmware(image) = %q %q %v", h, kind, err)
	}
	if _, _, err := HashFirmware(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing firmware hashed")
	}
}

func TestMounted(t *testing.T) {
	info := "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"40 27 0:5 / /s/instances/a/ro ro - ext4 /dev/loop0 ro\n" +
		"41 27 0:6 / /s/instances/a/union rw - overlay x rw\n" +
		"42 41 0:7 / /s/instances/a/union/proc rw - proc proc rw\n" +
		"43 27 0:8 / /s/instances/ab/ro ro - ext4 /dev/loop1 ro\n"
	got := Mounted(info, "/s/instances/a")
	want := []string{"/s/instances/a/union/proc", "/s/instances/a/union", "/s/instances/a/ro"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Mounted = %q, want %q (deepest first, not the neighbour ab)", got, want)
	}
}

func TestStoreRecords(t *testing.T) {
	testenv.NeedRoot(t, "Save gives an instance's folder to its mapped owner (chown), as ofsroot sandbox does as root")
	// An older state folder, world-readable.
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("empty store lists %v %v", l, err)
	}
	i := &Instance{Name: "fw1", Firmware: "/x.img", Kind: KindImage, Hash: "ab", Net: sandbox.NetPrivate}
	if err := s.Save(i); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("fw1")
	if err != nil || !reflect.DeepEqual(got, i) {
		t.Errorf("Load = %+v %v", got, err)
	}
	for _, d := range []string{s.Lower("fw1"), s.Layer("fw1"), s.Union("fw1")} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not made", d)
		}
	}
	// Root only: the layers hold what the firmware wrote, as root.
	for d, want := range map[string]os.FileMode{s.Dir: 0o711, filepath.Join(s.Dir, "instances"): 0o711, filepath.Join(s.Dir, "instances/fw1"): 0o700} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", d, fi.Mode().Perm(), err, want)
		}
	}
	if _, err := s.Load("nope"); err == nil {
		t.Error("Load of a missing instance")
	}
	// The run lock: held means running.
	lock, err := s.Lock("fw1")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Running("fw1") {
		t.Error("not running while the lock is held")
	}
	if err := s.Drop("fw1"); err == nil {
		t.Error("dropped a running instance")
	}
	lock.Close()
	if s.Running("fw1") {
		t.Error("running after the lock was let go")
	}
	if err := s.Remount("fw1"); err == nil {
		t.Error("remount of an image instance")
	}
}
