package ubootenv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []Location
	}{
		{"nitrogen6q SPI NOR", "/dev/mtd0 0xC0000 0x2000 0x1000\n",
			[]Location{{Device: "/dev/mtd0", Offset: 0xC0000, Size: 0x2000, SectorSize: 0x1000}}},
		{"comments, blanks, tabs", "# MTD device name\tDevice offset\tEnv. size\n\n  # indented comment\n/dev/mtd1\t0x0\t0x4000\t0x10000\n",
			[]Location{{Device: "/dev/mtd1", Size: 0x4000, SectorSize: 0x10000}}},
		{"sizes without 0x, decimal offset", "env.img 4096 2000", []Location{{Device: "env.img", Offset: 4096, Size: 0x2000}}},
		{"octal offset (C notation)", "env.img 010 2000", []Location{{Device: "env.img", Offset: 8, Size: 0x2000}}},
		{"negative offset from the end", "/dev/mmcblk0 -0x2000 0x2000", []Location{{Device: "/dev/mmcblk0", Offset: -0x2000, Size: 0x2000}}},
		{"NAND with sector count", "/dev/mtd2 0x0 0x20000 0x20000 4", []Location{{Device: "/dev/mtd2", Size: 0x20000, SectorSize: 0x20000, Sectors: 4}}},
		{"redundant", "/dev/mmcblk0 0x400000 0x4000\n/dev/mmcblk0 0x404000 0x4000\n",
			[]Location{{Device: "/dev/mmcblk0", Offset: 0x400000, Size: 0x4000}, {Device: "/dev/mmcblk0", Offset: 0x404000, Size: 0x4000}}},
		{"upper-case hex", "x 0XC0000 0X2000 0XABC", []Location{{Device: "x", Offset: 0xC0000, Size: 0x2000, SectorSize: 0xABC}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Copies, tc.want) {
				t.Errorf("got %+v\nwant %+v", c.Copies, tc.want)
			}
			if c.Redundant() != (len(tc.want) == 2) {
				t.Errorf("Redundant() = %v", c.Redundant())
			}
			// What String renders parses back the same.
			again, err := ParseConfig(strings.NewReader(c.String()))
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Errorf("String() does not round-trip: %v\n%s", err, c.String())
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "# nothing\n\n", "names no environment location"},
		{"two fields", "/dev/mtd0 0xC0000\n", "line 1"},
		{"six fields", "/dev/mtd0 0 0x2000 0x1000 1 9\n", "6 fields"},
		{"bad offset", "/dev/mtd0 0xZZ 0x2000\n", `offset "0xZZ"`},
		{"bad size", "/dev/mtd0 0 0x\n", `size "0x"`},
		{"negative size", "/dev/mtd0 0 -2000\n", `size "-2000"`},
		{"size too small", "/dev/mtd0 0 0x4\n", "too small"},
		{"bad sector size", "/dev/mtd0 0 0x2000 4k\n", `sector size "4k"`},
		{"bad sectors", "/dev/mtd0 0 0x2000 0x1000 y\n", `sector count "y"`},
		{"third copy", "a 0 0x2000\nb 0 0x2000\nc 0 0x2000\n", "line 3"},
		{"sizes differ", "a 0 0x2000\nb 0 0x4000\n", "differ in size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	var ce *ConfigError
	_, err := ParseConfig(strings.NewReader("\n\nx 0 zz\n"))
	if !errors.As(err, &ce) || ce.Line != 3 {
		t.Errorf("ConfigError line: %v", err)
	}
	if _, err := ReadConfig("/nonexistent/fw_env.config"); err == nil {
		t.Error("missing file: want an error")
	}
}
