package ubootenv_test

import (
	"fmt"
	"strings"

	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

// An environment as U-Boot's saveenv stores it: a CRC, then NAME=VALUE
// strings, padded to the size fw_env.config gives.
func ExampleEncode() {
	env := ubootenv.New()
	env.Set("overlayfs", "yes")
	env.Set("ofs-size", "20")
	raw, err := ubootenv.Encode(env, 0x2000, false, 0)
	if err != nil {
		panic(err)
	}
	back, _, err := ubootenv.Decode(raw, false)
	if err != nil {
		panic(err)
	}
	v, _ := back.Get("ofs-size")
	fmt.Println(len(raw), back.Names(), v)
	// Output: 8192 [ofs-size overlayfs] 20
}

// fw_env.config says where the environment lives: here the Nitrogen6's
// SPI NOR, 8 KiB at 0xC0000 in 4 KiB sectors.
func ExampleParseConfig() {
	cfg, err := ubootenv.ParseConfig(strings.NewReader("# Nitrogen6\n/dev/mtd0 0xC0000 0x2000 0x1000\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Redundant(), cfg.Copies[0].Device, cfg.Copies[0].Offset, cfg.Copies[0].Size)
	// Output: false /dev/mtd0 786432 8192
}
