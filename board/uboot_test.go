package board

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

// TestUBootBoards: the Nitrogen6 family and the SABRE Lite boot with
// U-Boot; their fw_env.config is what fw_setenv and ofsctl parse.
func TestUBootBoards(t *testing.T) {
	want := map[string]struct {
		dtb, build string
	}{
		"nitrogen6x":    {"imx6q-nitrogen6x.dtb", "nitrogen6q"},
		"nitrogen6_max": {"imx6q-nitrogen6_max.dtb", "nitrogen6_max"},
		"sabrelite":     {"imx6q-sabrelite.dtb", "nitrogen6q"},
	}
	for name, w := range want {
		b, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		u := b.UBoot
		if u == nil {
			t.Fatalf("%s has no uboot section", name)
		}
		if b.DeviceTree != w.dtb || u.Build != w.build || !strings.HasPrefix(b.Console, "ttymxc1") || b.KernelFlavour != "armmp" {
			t.Errorf("%s: dtb %s, build %s, console %s, flavour %s", name, b.DeviceTree, u.Build, b.Console, b.KernelFlavour)
		}
		if u.KernelAddr != 0x12000000 || u.RamdiskAddr != 0x13000000 || u.FDTAddr != 0x18000000 {
			t.Errorf("%s: addresses %s %s %s", name, u.KernelAddr, u.RamdiskAddr, u.FDTAddr)
		}
		cfg, err := ubootenv.ParseConfig(strings.NewReader(u.FwEnvConfig()))
		if err != nil {
			t.Fatalf("%s: fw_env.config does not parse: %v\n%s", name, err, u.FwEnvConfig())
		}
		c := cfg.Copies[0]
		if len(cfg.Copies) != 1 || c.Device != "/dev/mtd0" || c.Offset != 0xC0000 || c.Size != 0x2000 {
			t.Errorf("%s: fw_env.config %+v", name, cfg.Copies)
		}
	}
	b, _ := Lookup("nitrogen6x")
	if got := b.UBoot.FwEnvConfig(); !strings.Contains(got, "\n/dev/mtd0 0xC0000 0x2000 0x1000\n") {
		t.Errorf("nitrogen6x fw_env.config:\n%s", got)
	}
	if q := b.UBoot.QEMU; q == nil || q.Skip != 0xC00 || q.LoadAddr != 0x17800000 {
		t.Errorf("nitrogen6x uboot.qemu = %+v", q)
	}
}

// TestEnvModules: every board whose U-Boot environment is in SPI NOR
// (an MTD device) loads the drivers that make /dev/mtdN appear, so that
// ofsctl reaches the environment on any root, not only one whose own
// init loads them.
func TestEnvModules(t *testing.T) {
	checked := 0
	for _, name := range Names() {
		b, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.UBoot == nil {
			continue
		}
		for _, c := range b.UBoot.Env {
			if !strings.HasPrefix(c.Device, "/dev/mtd") {
				continue
			}
			checked++
			// spi-nor makes the MTD device; the SoC's SPI controller
			// (ECSPI on the i.MX6: spi-imx) carries it.
			want := map[string]bool{"spi-nor": false, "spi-imx": false}
			for _, m := range b.Modules {
				if _, ok := want[m]; ok {
					want[m] = true
				}
			}
			for m, ok := range want {
				if !ok {
					t.Errorf("%s keeps its environment in %s (%s) but does not load %s", name, c.Device, b.UBoot.EnvMedium, m)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no board keeps its environment in SPI NOR: the check checked nothing")
	}
}

func TestHex(t *testing.T) {
	var v struct {
		A, B, C Hex
	}
	if err := json.Unmarshal([]byte(`{"A":"0xC0000","B":4096,"C":"010"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 0xC0000 || v.B != 4096 || v.C != 8 {
		t.Errorf("%+v", v)
	}
	out, _ := json.Marshal(v)
	if string(out) != `{"A":"0xC0000","B":"0x1000","C":"0x8"}` {
		t.Errorf("Marshal = %s", out)
	}
	for _, bad := range []string{`{"A":"zz"}`, `{"A":true}`, `{"A":-1}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestUBootCheck(t *testing.T) {
	base := `{"name":"x","goarch":"arm","debian_arch":"armhf","kernel_flavour":"armmp","console":"ttymxc1","modules":["ext4"],"qemu":{},`
	for _, tc := range []struct{ uboot, want string }{
		{`"uboot":{"kernel_addr":"1","ramdisk_addr":"1","fdt_addr":"1","env":[{"device":"/dev/mtd0","size":"0x2000"}]}`, "build missing"},
		{`"uboot":{"build":"b","env":[{"device":"/dev/mtd0","size":"0x2000"}]}`, "kernel_addr"},
		{`"uboot":{"build":"b","kernel_addr":"1","ramdisk_addr":"1","fdt_addr":"1","env":[]}`, "0 copies"},
		{`"uboot":{"build":"b","kernel_addr":"1","ramdisk_addr":"1","fdt_addr":"1","env":[{"device":"a","size":"1"},{"device":"b","size":"2"}]}`, "same size"},
		{`"uboot":{"build":"b","kernel_addr":"1","ramdisk_addr":"1","fdt_addr":"1","env":[{"size":"1"}]}`, "device and a size"},
	} {
		_, err := parse("x", []byte(base+tc.uboot+"}"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.uboot, err, tc.want)
		}
	}
}

func TestEmulated(t *testing.T) {
	em := Emulated()
	has := map[string]bool{}
	for _, n := range em {
		has[n] = true
	}
	for _, want := range []string{"qemu-x86_64", "qemu-arm-virt", "sabrelite", "nitrogen6x"} {
		if !has[want] {
			t.Errorf("Emulated() = %v lacks %s", em, want)
		}
	}
	if has["nitrogen6_max"] {
		t.Errorf("Emulated() = %v has nitrogen6_max, which QEMU cannot boot", em)
	}
	b, err := Lookup("nitrogen6_max")
	if err != nil || b.QEMU.Unsupported == "" {
		t.Errorf("nitrogen6_max: %v, unsupported=%q", err, b.QEMU.Unsupported)
	}
}
