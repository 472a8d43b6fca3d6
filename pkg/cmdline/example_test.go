package cmdline_test

import (
	"fmt"

	"github.com/ofsroot/ofsroot/pkg/cmdline"
)

// What the init takes from a Boundary-style command line with the
// overlay switched on from U-Boot's environment.
func ExampleParse() {
	cfg, warns := cmdline.Parse("console=ttymxc1,115200 root=/dev/mmcblk3p2 rootwait ro overlayfs=yes ofs-size=20")
	fmt.Println(cfg.Overlay, cfg.Size, cfg.Root, cfg.RootWait, len(warns))
	// 20% of 1 GiB of RAM:
	fmt.Println(cfg.Size.For(1 << 30))
	// Output:
	// yes 20% /dev/mmcblk3p2 true 0
	// 214748360
}

// A bad value never stops a boot: it yields a warning naming the word
// and the default used instead.
func ExampleParse_badValue() {
	_, warns := cmdline.Parse("root=/dev/vda overlayfs=yes ofs-size=abc")
	for _, w := range warns {
		fmt.Println(w.Word, w.Value, "->", w.Default)
	}
	// Output: ofs-size abc -> 50%
}
