package kmod

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/internal/testenv"
	"github.com/ofsroot/ofsroot/pkg/debcache/debcachetest"
)

var (
	unpackMu sync.Mutex
	unpacked = map[string]string{}
)

// realRoot unpacks the kernel package of a flavour with dpkg -x, once
// per test binary, and runs depmod on the copy so that modprobe can
// answer for it.
func realRoot(t *testing.T, flavour string) string {
	t.Helper()
	k := debcachetest.Kernel(t, flavour) // outside the lock: may download
	testenv.NeedTools(t, "dpkg", "depmod", "modprobe")
	unpackMu.Lock()
	defer unpackMu.Unlock()
	if dir, ok := unpacked[flavour]; ok {
		return dir
	}
	deb := k.Deb
	dir, err := os.MkdirTemp("", "kmod-test-"+flavour+"-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("dpkg", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x %s: %v\n%s", deb, err, out)
	}
	unpacked[flavour] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range unpacked {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// depmod runs depmod on a copy of the tree's metadata and returns the
// modules.dep it wrote (module path -> dependency paths), and a function
// that asks modprobe for the load order of one module.
func depmod(t *testing.T, tree *Tree, root string) (map[string][]string, func(string) []string) {
	t.Helper()
	if out, err := exec.Command("depmod", "-b", root, tree.Version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	f, err := os.Open(filepath.Join(tree.Dir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, _ := strings.Cut(sc.Text(), ":")
		deps[mod] = strings.Fields(rest)
	}
	show := func(name string) []string {
		out, err := exec.Command("modprobe", "-d", root, "-S", tree.Version, "--show-depends", name).CombinedOutput()
		if err != nil {
			t.Fatalf("modprobe --show-depends %s: %v\n%s", name, err, out)
		}
		var mods []string
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "insmod" {
				mods = append(mods, NameFromPath(f[1]))
			}
		}
		return mods
	}
	return deps, show
}

// bootLab are the orders that booted in the boot lab, with squashfs
// (added to the boards since) where the resolver places it, and on
// sabrelite the SPI NOR drivers its environment needs (as nitrogen6x,
// which boots on the same QEMU machine with them).
var bootLab = map[string][]string{
	"qemu-x86_64": {"sha256_ssse3", "crc32c_generic", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_pci",
		"virtio_blk", "jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
	"qemu-arm-virt": {"sha256_arm", "crc32c_generic", "virtio_mmio", "virtio_blk", "jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
	"sabrelite": {"sha256_arm", "crc32c_generic", "gpio_mxc", "imx2_wdt", "sdhci", "cqhci", "sdhci_pltfm", "sdhci_esdhc_imx",
		"spi_imx", "spi_nor", "jbd2", "mbcache", "crc16", "ext4", "squashfs", "overlay"},
}

// TestBoardsAgainstModprobe resolves every board's module list against
// the real Debian kernel and checks the order against depmod's
// modules.dep and modprobe --show-depends.
func TestBoardsAgainstModprobe(t *testing.T) {
	boards, err := board.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boards {
		t.Run(b.Name, func(t *testing.T) {
			root := realRoot(t, b.KernelFlavour)
			tree, err := OpenTree(root, "")
			if err != nil {
				t.Fatal(err)
			}
			plan, err := tree.Plan(b.Modules)
			if err != nil {
				t.Fatal(err)
			}
			got := plan.Names()
			t.Logf("%s (%s): %s", b.Name, tree.Version, strings.Join(got, " "))
			if want, ok := bootLab[b.Name]; ok && !reflect.DeepEqual(got, want) {
				t.Errorf("order\n got %q\nwant %q (the boot lab's)", got, want)
			}
			for _, n := range plan.Notes {
				t.Logf("note: %s", n)
			}

			deps, show := depmod(t, tree, root)
			// Every module comes after everything modules.dep says
			// it needs.
			pos := map[string]int{}
			for i, m := range plan.Modules {
				for _, d := range deps[m.Path] {
					j, ok := pos[NameFromPath(d)]
					if !ok || j > i {
						t.Errorf("%s placed before its dependency %s (modules.dep)", m.Name, NameFromPath(d))
					}
				}
				pos[m.Name] = i
			}
			// What modprobe would load for each board module is in
			// the list, in an order modprobe agrees with, except the
			// crc32c providers the board's own choice replaces.
			for _, name := range b.Modules {
				alone, err := Resolve(tree, []string{name})
				if err != nil {
					t.Fatal(err)
				}
				var aloneNames []string
				for _, m := range alone {
					aloneNames = append(aloneNames, m.Name)
				}
				want := show(name)
				if !sameSet(aloneNames, want) {
					t.Errorf("%s alone: %q, modprobe loads %q", name, aloneNames, want)
				}
				for _, m := range want {
					if _, ok := pos[m]; !ok && !strings.HasPrefix(m, "crc32") {
						t.Errorf("%s: modprobe loads %s first, the board's list lacks it", name, m)
					}
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

// TestRealProviders checks the alias index on a whole Debian kernel:
// ext4's soft dependency has the providers modprobe knows.
func TestRealProviders(t *testing.T) {
	root := realRoot(t, "amd64")
	tree, err := OpenTree(root, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tree.Providers("crypto-crc32c")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"crc32c_intel", "crc32c_generic"}; !reflect.DeepEqual(got, want) {
		t.Errorf("providers of crypto-crc32c: %q, want %q", got, want)
	}
	if _, err := Resolve(tree, []string{"ext5"}); err == nil || !strings.Contains(err.Error(), "did you mean ext4") {
		t.Errorf("ext5: %v", err)
	}
}
