package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeMod is one module of a fake tree.
type fakeMod struct {
	path   string   // relative to lib/modules/VERSION
	fields []string // .modinfo key=value fields
}

// fakeTree writes a package root with lib/modules/VERSION holding mods,
// modules.builtin (builtin module names) and modules.order (the module
// paths in the order given by order, or of mods if nil).
func fakeTree(t testing.TB, version string, mods []fakeMod, builtin []string, builtinModinfo string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules", version)
	var order []string
	for _, m := range mods {
		p := filepath.Join(dir, filepath.FromSlash(m.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		suffix := ".ko"
		for _, s := range Suffixes {
			if strings.HasSuffix(m.path, s) {
				suffix = s
			}
		}
		if err := os.WriteFile(p, compress(t, suffix, fakeELF(t, m.fields...)), 0o644); err != nil {
			t.Fatal(err)
		}
		order = append(order, m.path)
	}
	var b []string
	for _, n := range builtin {
		b = append(b, "kernel/builtin/"+n+".ko")
	}
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(strings.Join(b, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.order"), []byte(strings.Join(order, "\n")+"\n"), 0o644)
	if builtinModinfo != "" {
		os.WriteFile(filepath.Join(dir, "modules.builtin.modinfo"), []byte(builtinModinfo), 0o644)
	}
	return root
}

// testMods is a small kernel in the image of Debian's: ext4 with its
// soft dependency on crc32c, two crc32c providers, virtio, and the i.MX
// SD host with dashed names.
var testMods = []fakeMod{
	{"kernel/arch/x86/crypto/crc32c-intel.ko", []string{"alias=crypto-crc32c", "alias=crc32c", "alias=crc32c-intel", "depends=", "name=crc32c_intel"}},
	{"kernel/crypto/crc32c_generic.ko", []string{"alias=crypto-crc32c-generic", "alias=crc32c-generic", "alias=crypto-crc32c", "alias=crc32c", "depends=", "name=crc32c_generic"}},
	{"kernel/fs/jbd2/jbd2.ko", []string{"softdep=pre: crypto-crc32c", "depends=", "name=jbd2"}},
	{"kernel/fs/mbcache.ko", []string{"depends=", "name=mbcache"}},
	{"kernel/lib/crc16.ko.xz", []string{"depends=", "name=crc16"}},
	{"kernel/fs/ext4/ext4.ko", []string{"softdep=pre: crypto-crc32c", "alias=fs-ext4", "depends=jbd2,mbcache,crc16", "name=ext4"}},
	{"kernel/fs/overlayfs/overlay.ko.zst", []string{"alias=fs-overlay", "depends=", "name=overlay"}},
	{"kernel/drivers/virtio/virtio_pci.ko", []string{"alias=pci:v00001AF4d*sv*sd*bc*sc*i*", "depends=virtio_ring,virtio", "name=virtio_pci"}},
	{"kernel/drivers/block/virtio_blk.ko", []string{"alias=virtio:d00000002v*", "depends=virtio,virtio_ring", "name=virtio_blk"}},
	{"kernel/drivers/mmc/host/sdhci.ko", []string{"depends=", "name=sdhci"}},
	{"kernel/drivers/mmc/host/sdhci-pltfm.ko.gz", []string{"depends=sdhci", "name=sdhci_pltfm"}},
	{"kernel/drivers/mmc/host/sdhci-esdhc-imx.ko", []string{"depends=sdhci,cqhci,sdhci-pltfm", "name=sdhci_esdhc_imx"}},
	{"kernel/drivers/mmc/host/cqhci.ko", []string{"depends=", "name=cqhci"}},
	{"kernel/drivers/gpio/gpio-mxc.ko", []string{"depends=", "name=gpio_mxc"}},
	{"kernel/misc/needs-missing.ko", []string{"depends=nosuchmod", "name=needs_missing"}},
	{"kernel/misc/cyc_a.ko", []string{"depends=cyc_b", "name=cyc_a"}},
	{"kernel/misc/cyc_b.ko", []string{"depends=cyc_c", "name=cyc_b"}},
	{"kernel/misc/cyc_c.ko", []string{"depends=cyc_a", "name=cyc_c"}},
	{"kernel/misc/soft_a.ko", []string{"softdep=pre: soft_b post: overlay", "depends=", "name=soft_a"}},
	{"kernel/misc/soft_b.ko", []string{"depends=soft_a", "name=soft_b"}},
	{"kernel/misc/soft-none.ko", []string{"softdep=pre: nothing-provides-this", "depends=", "name=soft_none"}},
	{"kernel/misc/soft-builtin.ko", []string{"softdep=pre: crypto-sha256", "depends=", "name=soft_builtin"}},
	{"kernel/misc/soft-byname.ko", []string{"softdep=pre: gpio-mxc", "depends=", "name=soft_byname"}},
	{"updates/misc/mbcache.ko", []string{"depends=", "name=mbcache"}},
}

func testTree(t testing.TB) *Tree {
	t.Helper()
	root := fakeTree(t, "6.1.0-test", testMods, []string{"virtio", "virtio_ring", "sha256_generic"},
		"sha256_generic.alias=crypto-sha256\x00sha256_generic.alias=sha256\x00virtio.file=drivers/virtio/virtio\x00")
	tree, err := OpenTree(root, "")
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestOpenTree(t *testing.T) {
	tree := testTree(t)
	if tree.Version != "6.1.0-test" {
		t.Errorf("version %q", tree.Version)
	}
	if p, ok := tree.Path("mbcache"); !ok || p != "updates/misc/mbcache.ko" {
		t.Errorf("mbcache at %q: updates/ should win over kernel/", p)
	}
	if p, ok := tree.Path("sdhci-pltfm"); !ok || p != "kernel/drivers/mmc/host/sdhci-pltfm.ko.gz" {
		t.Errorf("sdhci-pltfm at %q, %v", p, ok)
	}
	if !tree.Builtin("virtio") || !tree.Builtin("sha256-generic") || tree.Builtin("ext4") {
		t.Error("modules.builtin misread")
	}

	// Errors: no tree, several trees, a named version.
	empty := t.TempDir()
	if _, err := OpenTree(empty, ""); !errors.Is(err, ErrNoTree) || !strings.Contains(err.Error(), "lib/modules/VERSION") {
		t.Errorf("empty folder: %v", err)
	}
	two := fakeTree(t, "6.1.0-a", testMods[:1], nil, "")
	os.MkdirAll(filepath.Join(two, "usr/lib/modules/6.12.0-b/kernel"), 0o755)
	os.WriteFile(filepath.Join(two, "usr/lib/modules/6.12.0-b/kernel/x.ko"), fakeELF(t, "name=x"), 0o644)
	if _, err := OpenTree(two, ""); err == nil || !strings.Contains(err.Error(), "6.1.0-a, 6.12.0-b") {
		t.Errorf("two kernels: %v", err)
	}
	if tr, err := OpenTree(two, "6.12.0-b"); err != nil || tr.Version != "6.12.0-b" {
		t.Errorf("usr/lib/modules by version: %v", err)
	}
	if _, err := OpenTree(two, "5.10"); !errors.Is(err, ErrNoTree) {
		t.Errorf("missing version: %v", err)
	}
	noMods := t.TempDir()
	os.MkdirAll(filepath.Join(noMods, "lib/modules/6.1.0-x"), 0o755)
	if _, err := OpenTree(noMods, ""); err == nil || !strings.Contains(err.Error(), "no module files") {
		t.Errorf("tree without modules: %v", err)
	}
	if _, err := OpenTree(filepath.Join(empty, "nope"), ""); !os.IsNotExist(err) {
		t.Errorf("missing root: %v", err)
	}
}

func TestResolve(t *testing.T) {
	tree := testTree(t)
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		builtin []string
		notes   []string
	}{
		{"single", []string{"overlay"}, []string{"overlay"}, nil, nil},
		{"ext4 alone gets every crc32c provider in modules.order order",
			[]string{"ext4"}, []string{"crc32c_intel", "crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"}, nil, nil},
		{"a requested provider wins",
			[]string{"crc32c_generic", "ext4"}, []string{"crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"}, nil, nil},
		{"a requested provider wins even when listed later, and goes first",
			[]string{"ext4", "crc32c-generic"}, []string{"crc32c_generic", "jbd2", "mbcache", "crc16", "ext4"}, nil, nil},
		{"built-in dependencies are satisfied",
			[]string{"virtio_pci", "virtio_blk"}, []string{"virtio_pci", "virtio_blk"}, nil, nil},
		{"dashes and duplicates",
			[]string{"sdhci-esdhc-imx", "sdhci_esdhc_imx", "gpio-mxc", "sdhci"}, []string{"sdhci", "cqhci", "sdhci_pltfm", "sdhci_esdhc_imx", "gpio_mxc"}, nil, nil},
		{"requested built-ins are reported",
			[]string{"virtio", "overlay", "crypto-sha256"}, []string{"overlay"}, []string{"virtio", "crypto-sha256"}, nil},
		{"a requested alias brings its providers",
			[]string{"fs-overlay"}, []string{"overlay"}, nil, nil},
		{"a soft dependency closing a cycle is placed after; post: is noted",
			[]string{"soft_a"}, []string{"soft_a", "soft_b"}, nil,
			[]string{"soft_a: soft dependency soft_b (soft_b) would close a cycle (soft_a -> soft_b -> soft_a); placed after it",
				"soft_a: soft post: dependency overlay not followed"}},
		{"soft dependency nothing provides",
			[]string{"soft-none"}, []string{"soft_none"}, nil, []string{"soft_none: soft dependency nothing-provides-this: no module provides it, skipped"}},
		{"soft dependency on a built-in alias",
			[]string{"soft_builtin"}, []string{"soft_builtin"}, nil, nil},
		{"soft dependency by module name",
			[]string{"soft_byname"}, []string{"gpio_mxc", "soft_byname"}, nil, nil},
		{"empty", nil, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tree.Plan(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Names(); !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("order %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(p.Builtin, tc.builtin) {
				t.Errorf("builtin %q, want %q", p.Builtin, tc.builtin)
			}
			if tc.notes != nil && !reflect.DeepEqual(p.Notes[:len(tc.notes)], tc.notes) {
				t.Errorf("notes %q, want %q", p.Notes, tc.notes)
			}
			// Resolve agrees, and a second run gives the same.
			mods, err := Resolve(tree, tc.in)
			if err != nil || !reflect.DeepEqual(mods, p.Modules) {
				t.Errorf("Resolve differs from Plan: %v", err)
			}
		})
	}
}

func TestResolveDetails(t *testing.T) {
	tree := testTree(t)
	p, err := tree.Plan([]string{"ext4", "crc32c_generic"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"crc32c_generic": "requested",
		"jbd2":           "needed by ext4",
		"crc16":          "needed by ext4",
		"ext4":           "requested",
	}
	for _, m := range p.Modules {
		if w, ok := want[m.Name]; ok && m.Reason != w {
			t.Errorf("%s: reason %q, want %q", m.Name, m.Reason, w)
		}
		if m.File != filepath.Join(tree.Dir, filepath.FromSlash(m.Path)) {
			t.Errorf("%s: file %q, path %q", m.Name, m.File, m.Path)
		}
		if m.Info == nil || m.Info.Name != m.Name {
			t.Errorf("%s: info %+v", m.Name, m.Info)
		}
	}
	if m := p.Modules[2]; m.Name != "mbcache" || m.Path != "updates/misc/mbcache.ko" {
		t.Errorf("third module %+v", m)
	}
	q, _ := tree.Plan([]string{"ext4"})
	if r := q.Modules[0].Reason; r != "soft dependency of ext4 (crypto-crc32c)" {
		t.Errorf("soft dependency reason %q", r)
	}
}

func TestResolveErrors(t *testing.T) {
	tree := testTree(t)

	_, err := Resolve(tree, []string{"overlay", "ovrlay"})
	var unknown *UnknownModuleError
	if !errors.As(err, &unknown) || unknown.Name != "ovrlay" || len(unknown.Suggestions) == 0 || unknown.Suggestions[0] != "overlay" {
		t.Errorf("misspelt module: %v", err)
	} else if !strings.Contains(err.Error(), `no module "ovrlay"`) || !strings.Contains(err.Error(), "did you mean overlay") {
		t.Errorf("message %q", err)
	}
	_, err = Resolve(tree, []string{"sdhci_imx"})
	if !errors.As(err, &unknown) || !reflect.DeepEqual(unknown.Suggestions[:1], []string{"sdhci"}) {
		t.Errorf("sdhci_imx: %v", err)
	}
	_, err = Resolve(tree, []string{"zzzzzzzzzzzz"})
	if !errors.As(err, &unknown) || len(unknown.Suggestions) != 0 || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("hopeless name: %v", err)
	}

	_, err = Resolve(tree, []string{"needs-missing"})
	var missing *MissingDependencyError
	if !errors.As(err, &missing) || missing.Module != "needs_missing" || missing.Dependency != "nosuchmod" {
		t.Errorf("missing dependency: %v", err)
	}

	_, err = Resolve(tree, []string{"overlay", "cyc_b"})
	var cycle *CycleError
	if !errors.As(err, &cycle) || !reflect.DeepEqual(cycle.Cycle, []string{"cyc_b", "cyc_c", "cyc_a", "cyc_b"}) {
		t.Errorf("cycle: %v", err)
	} else if err.Error() != "module dependency cycle: cyc_b -> cyc_c -> cyc_a -> cyc_b" {
		t.Errorf("cycle message %q", err)
	}

	// A broken module file is an error naming it.
	root := fakeTree(t, "6.1.0-bad", testMods[:1], nil, "")
	os.WriteFile(filepath.Join(root, "lib/modules/6.1.0-bad/kernel/broken.ko"), []byte("not elf"), 0o644)
	bad, err := OpenTree(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(bad, []string{"broken"}); err == nil || !strings.Contains(err.Error(), "broken.ko") {
		t.Errorf("broken module: %v", err)
	}
}

// TestFindTreesMergedUsr: on a merged-/usr root (lib -> usr/lib) the one
// module tree is found once, not twice.
func TestFindTreesMergedUsr(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/modules/6.1.0-50-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	dirs, err := FindTrees(root)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("FindTrees = %q, %v; want one tree", dirs, err)
	}
}
