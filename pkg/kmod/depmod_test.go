package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDepmod(t *testing.T) {
	dep := "kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz\n" +
		"\n# comment\nkernel/fs/overlayfs/overlay.ko.zst:\nkernel/drivers/mmc/host/sdhci-pltfm.ko.gz: kernel/drivers/mmc/host/sdhci.ko\n"
	m, err := ParseDepmod(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	extra := "# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crc32c post: foo\nsoftdep nosuch pre: x\n" +
		"# Aliases extracted from modules themselves.\nalias fs-ext4 ext4\nalias fs-overlay overlay\nalias junk\n"
	if err := ParseDepmodExtra(strings.NewReader(extra), m); err != nil {
		t.Fatal(err)
	}
	want := map[string]*ModInfo{
		"ext4":        {Name: "ext4", Depends: []string{"crc16", "mbcache", "jbd2"}, SoftPre: []string{"crc32c"}, SoftPost: []string{"foo"}, Aliases: []string{"fs-ext4"}},
		"overlay":     {Name: "overlay", Aliases: []string{"fs-overlay"}},
		"sdhci_pltfm": {Name: "sdhci_pltfm", Depends: []string{"sdhci"}},
	}
	if !reflect.DeepEqual(m, want) {
		for k, v := range m {
			t.Errorf("%s: %+v", k, *v)
		}
	}
	for _, bad := range []string{"no colon here\n", "notamodule.txt: x\n"} {
		if _, err := ParseDepmod(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestTreeWithoutDecompressors is the init's view of a distribution's
// installed modules: compressed, no decoder in the program, so what a
// compressed module needs comes from depmod's files, and without them
// the error says what to do.
func TestTreeWithoutDecompressors(t *testing.T) {
	saved := decompressors
	SetDecompressors(nil)
	t.Cleanup(func() { SetDecompressors(saved) })

	mods := []fakeMod{
		{"kernel/fs/overlayfs/overlay.ko.xz", []string{"depends=", "name=overlay"}},
		{"kernel/fs/ext4/ext4.ko.zst", []string{"softdep=pre: crc32c", "depends=jbd2", "name=ext4"}},
		{"kernel/fs/jbd2/jbd2.ko.xz", []string{"depends=", "name=jbd2"}},
		{"kernel/crypto/crc32c_generic.ko.gz", []string{"alias=crc32c", "depends=", "name=crc32c_generic"}},
		{"kernel/fs/mbcache.ko", []string{"depends=", "name=mbcache"}},
	}
	root := fakeTree(t, "6.12.0-test", mods, nil, "")
	tree, err := OpenTree(root, "")
	if err != nil {
		t.Fatal(err)
	}
	// Without modules.dep: an error naming the module, the file and
	// the fix. A plain module still reads.
	if _, err := tree.ModInfo("overlay"); err == nil || !strings.Contains(err.Error(), "overlay.ko.xz is compressed") || !strings.Contains(err.Error(), "run depmod 6.12.0-test") {
		t.Errorf("no modules.dep: %v", err)
	}
	if mi, err := tree.ModInfo("mbcache"); err != nil || mi.Name != "mbcache" {
		t.Errorf("plain module: %+v %v", mi, err)
	}
	if _, err := ReadModule(filepath.Join(tree.Dir, "kernel/fs/jbd2/jbd2.ko.xz")); err == nil || !strings.Contains(err.Error(), ErrCompressed.Error()) {
		t.Errorf("ReadModule without a decompressor: %v", err)
	}

	dir := filepath.Join(root, "lib/modules/6.12.0-test")
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/fs/overlayfs/overlay.ko.xz:\nkernel/fs/ext4/ext4.ko.zst: kernel/fs/jbd2/jbd2.ko.xz\n"+
			"kernel/fs/jbd2/jbd2.ko.xz:\nkernel/crypto/crc32c_generic.ko.gz:\nkernel/fs/mbcache.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.softdep"), []byte("softdep ext4 pre: crc32c\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte("alias crc32c crc32c_generic\n"), 0o644)
	tree, err = OpenTree(root, "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := tree.Plan([]string{"ext4", "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range plan.Modules {
		got = append(got, m.Name)
	}
	if want := []string{"crc32c_generic", "jbd2", "ext4", "overlay"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plan %v, want %v", got, want)
	}
	// A compressed module depmod does not list.
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/fs/ext4/ext4.ko.zst:\n"), 0o644)
	tree, _ = OpenTree(root, "")
	if _, err := tree.ModInfo("overlay"); err == nil || !strings.Contains(err.Error(), "does not list it") {
		t.Errorf("module missing from modules.dep: %v", err)
	}
}

// A hostile root's modules.dep cannot make the init read without end.
func TestDepmodFileBounded(t *testing.T) {
	l := &limited{strings.NewReader(strings.Repeat("kernel/a.ko:\n", maxDepmodFile/13+10)), maxDepmodFile}
	if _, err := ParseDepmod(l); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("a %d-byte modules.dep: %v", maxDepmodFile+130, err)
	}
	l = &limited{strings.NewReader("kernel/a.ko:\n"), maxDepmodFile}
	if m, err := ParseDepmod(l); err != nil || m["a"] == nil {
		t.Errorf("small file: %v %v", m, err)
	}
}
