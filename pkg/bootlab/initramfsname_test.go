package bootlab

import (
	"testing"

	"github.com/ofsroot/ofsroot/initramfs"
)

// TestInitramfsName: every option that changes an initramfs's contents
// changes its file name in the lab (two variants sharing one file made
// tests boot the other's), and the same options give the same name.
func TestInitramfsName(t *testing.T) {
	base := initramfs.Options{Compression: "gzip"}
	variants := map[string]initramfs.Options{"base": base}
	for name, change := range map[string]func(*initramfs.Options){
		"compression":  func(o *initramfs.Options) { o.Compression = "zstd" },
		"without":      func(o *initramfs.Options) { o.WithoutModules = []string{"overlay"} },
		"shell":        func(o *initramfs.Options) { o.Shell = "/b/busybox" },
		"apparmor":     func(o *initramfs.Options) { o.SandboxAppArmor = true },
		"zram":         func(o *initramfs.Options) { o.Zram = "/b/busybox" },
		"stripped":     func(o *initramfs.Options) { o.StripModules = true },
		"params":       func(o *initramfs.Options) { o.ModuleParams = map[string]string{"zram": "num_devices=2"} },
		"init":         func(o *initramfs.Options) { o.InitBinary = "/b/init" },
		"version":      func(o *initramfs.Options) { o.Version = "1.0" },
		"kernel-older": func(o *initramfs.Options) { o.KernelVersion = "6.1.0-1" },
	} {
		o := base
		change(&o)
		variants[name] = o
	}
	seen := map[string]string{}
	for name, o := range variants {
		n := initramfsName(o)
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share the name %s", name, other, n)
		}
		seen[n] = name
		o.Output, o.Log = "/elsewhere", func(string, ...any) {}
		if again := initramfsName(o); again != n {
			t.Errorf("%s: name %s, then %s with only the output and log changed", name, n, again)
		}
	}
}
