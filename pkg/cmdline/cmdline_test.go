package cmdline

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"a b  c\n", []string{"a", "b", "c"}},
		{`console=ttyS0 foo="bar baz" x`, []string{"console=ttyS0", "foo=bar baz", "x"}},
		{`"quoted word" y`, []string{"quoted word", "y"}},
		{"tab\there", []string{"tab", "here"}},
		{`unterminated="a b`, []string{"unterminated=a b"}},
		{`empty="" z`, []string{"empty=", "z"}},
	} {
		if got := Split(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"yes", "YES", "Yes", "y", "on", "ON", "true", "True", "1", "enable", "enabled"} {
		if v, ok := ParseBool(s); !v || !ok {
			t.Errorf("ParseBool(%q) = %v, %v; want true, true", s, v, ok)
		}
	}
	for _, s := range []string{"no", "NO", "n", "off", "Off", "false", "FALSE", "0", "disable", "disabled"} {
		if v, ok := ParseBool(s); v || !ok {
			t.Errorf("ParseBool(%q) = %v, %v; want false, true", s, v, ok)
		}
	}
	for _, s := range []string{"", "maybe", "2", "yess", " yes"} {
		if _, ok := ParseBool(s); ok {
			t.Errorf("ParseBool(%q) accepted", s)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		err  string
	}{
		{"20", Size{Percent: 20}, ""},
		{"1", Size{Percent: 1}, ""},
		{"100", Size{Percent: 100}, ""},
		{"20%", Size{Percent: 20}, ""},
		{"512M", Size{Bytes: 512 << 20}, ""},
		{"512m", Size{Bytes: 512 << 20}, ""},
		{"1G", Size{Bytes: 1 << 30}, ""},
		{"2g", Size{Bytes: 2 << 30}, ""},
		{"65536K", Size{Bytes: 65536 << 10}, ""},
		{"64k", Size{Bytes: 64 << 10}, ""},
		{"0", Size{}, "out of range"},
		{"0%", Size{}, "out of range"},
		{"101", Size{}, "out of range"},
		{"250", Size{}, "out of range"},
		{"0M", Size{}, "above zero"},
		{"abc", Size{}, "not a size"},
		{"", Size{}, "empty"},
		{"%", Size{}, "not a size"},
		{"M", Size{}, "not a size"},
		{"-5", Size{}, "not a size"},
		{"1.5G", Size{}, "not a size"},
		{"20T", Size{}, "not a size"},
		{"99999999999999999999G", Size{}, "not a size"},
		{"17179869184G", Size{}, "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSizeFor(t *testing.T) {
	mem := uint64(500 << 20)
	if got := (Size{Percent: 20}).For(mem); got != 100<<20 {
		t.Errorf("20%% of 500M = %d", got)
	}
	if got := (Size{Bytes: 64 << 20}).For(mem); got != 64<<20 {
		t.Errorf("64M = %d", got)
	}
	for s, want := range map[Size]string{{Percent: 20}: "20%", {Bytes: 1 << 30}: "1G", {Bytes: 3 << 20}: "3M", {Bytes: 5 << 10}: "5K", {Bytes: 1000}: "1000"} {
		if s.String() != want {
			t.Errorf("%+v.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// TestRAMCap: the rule, and that an explicit word overrides it.
func TestRAMCap(t *testing.T) {
	const M = 1 << 20
	for _, tc := range []struct {
		line            string
		mem, avail, cap uint64
		ok              bool
	}{
		{"", 48 * M, 20 * M, 12 * M, true},                       // 8M reserve
		{"", 200 * M, 150 * M, 130 * M, true},                    // 10% of MemTotal
		{"", 48 * M, 6 * M, 4 << 10, true},                       // less than the reserve
		{"ofs-size-reserve=16M", 96 * M, 80 * M, 64 * M, true},   // explicit
		{"ofs-size-reserve=50%", 200 * M, 150 * M, 50 * M, true}, // explicit share
		{"ofs-size-reserve=0", 96 * M, 80 * M, 0, false},         // lifted
	} {
		c, w := Parse(tc.line)
		got, ok := c.RAMCap(tc.mem, tc.avail)
		if len(w) != 0 || got != tc.cap || ok != tc.ok {
			t.Errorf("%q on %d MiB (%d available): cap %d, %v (warnings %v); want %d, %v", tc.line, tc.mem/M, tc.avail/M, got, ok, w, tc.cap, tc.ok)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c, w := Parse("console=ttyS0 root=/dev/vda")
	if len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
	want := Default()
	want.Root = "/dev/vda"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if c.Overlay != OverlayOff || c.ReadWrite || c.Size.Percent != 50 || c.Rescue != RescueReboot || c.RescueDelay != 10*time.Second {
		t.Errorf("defaults wrong: %+v", c)
	}
}

// TestParseWords covers every word the init reads.
func TestParseWords(t *testing.T) {
	for _, tc := range []struct {
		line  string
		check func(Config) bool
	}{
		{"overlayfs=yes", func(c Config) bool { return c.Overlay == OverlayOn && c.OverlayWord == "yes" }},
		{"overlayfs=ON", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"overlayfs=1", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"overlayfs=True", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"overlayfs", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"overlayfs=no", func(c Config) bool { return c.Overlay == OverlayOff && c.OverlayWord == "no" }},
		{"overlayfs=yes overlayfs=off", func(c Config) bool { return c.Overlay == OverlayOff }},
		{"ofs-size=20", func(c Config) bool { return c.Size == Size{Percent: 20} }},
		{"ofs-size=30%", func(c Config) bool { return c.Size == Size{Percent: 30} }},
		{"ofs-size=256M", func(c Config) bool { return c.Size == Size{Bytes: 256 << 20} }},
		{"ofs-size-reserve=32M", func(c Config) bool { return c.Reserve == Size{Bytes: 32 << 20} && !c.ReserveOff }},
		{"ofs-size-reserve=10%", func(c Config) bool { return c.Reserve == Size{Percent: 10} }},
		{"ofs-size-reserve=0", func(c Config) bool { return c.ReserveOff }},
		{"panic=10", func(c Config) bool { return c.PanicSet }},
		{"ofs-rescue=halt", func(c Config) bool { return c.Rescue == RescueHalt }},
		{"ofs-rescue=SHELL", func(c Config) bool { return c.Rescue == RescueShell }},
		{"ofs-rescue=reboot", func(c Config) bool { return c.Rescue == RescueReboot }},
		{"ofs-rescue-delay=0", func(c Config) bool { return c.RescueDelay == 0 }},
		{"ofs-rescue-delay=3", func(c Config) bool { return c.RescueDelay == 3*time.Second }},
		{"root=UUID=abcd-ef", func(c Config) bool { return c.Root == "UUID=abcd-ef" }},
		{"root=PARTUUID=0badcafe-01", func(c Config) bool { return c.Root == "PARTUUID=0badcafe-01" }},
		{"rootfstype=ext4", func(c Config) bool { return reflect.DeepEqual(c.RootFSType, []string{"ext4"}) }},
		{"rootfstype=ext4,,squashfs", func(c Config) bool { return reflect.DeepEqual(c.RootFSType, []string{"ext4", "squashfs"}) }},
		{"rootflags=data=journal,noatime", func(c Config) bool { return c.RootFlags == "data=journal,noatime" }},
		{"rw", func(c Config) bool { return c.ReadWrite }},
		{"rw ro", func(c Config) bool { return !c.ReadWrite }},
		{"ro rw", func(c Config) bool { return c.ReadWrite }},
		{"rootwait", func(c Config) bool { return c.RootWait && c.RootWaitTimeout == 0 }},
		{"rootwait=7", func(c Config) bool { return c.RootWait && c.RootWaitTimeout == 7*time.Second }},
		{"rootdelay=2", func(c Config) bool { return c.RootDelay == 2*time.Second }},
		{"init=/lib/systemd/systemd", func(c Config) bool { return c.Init == "/lib/systemd/systemd" }},
		{"init=/bin/sh -- ofs-size=10 overlayfs=yes", func(c Config) bool {
			return c.Init == "/bin/sh" && c.Overlay == OverlayOff && c.Size.Percent == 50
		}},
		{`root="LABEL=my root"`, func(c Config) bool { return c.Root == "LABEL=my root" }},
	} {
		c, w := Parse(tc.line)
		if len(w) != 0 {
			t.Errorf("Parse(%q) warned: %v", tc.line, w)
		}
		if !tc.check(c) {
			t.Errorf("Parse(%q) = %+v", tc.line, c)
		}
	}
}

// TestParseBadValues: every bad value gives a warning naming the word,
// the value and the default, and the default is what is used.
func TestParseBadValues(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
		ok   func(Config) bool
	}{
		{"ofs-size=abc", "ofs-size=abc: not a size", func(c Config) bool { return c.Size.Percent == 50 }},
		{"ofs-size=0", "ofs-size=0: percentage out of range 1-100; using 50%", func(c Config) bool { return c.Size.Percent == 50 }},
		{"ofs-size=250", "ofs-size=250: percentage out of range 1-100; using 50%", func(c Config) bool { return c.Size.Percent == 50 }},
		{"ofs-size=20 ofs-size=x", "ofs-size=x:", func(c Config) bool { return c.Size.Percent == 50 }},
		{"ofs-size=", "ofs-size=: empty", func(c Config) bool { return c.Size.Percent == 50 }},
		// A bad protection word fails closed: protected, whatever rw says.
		{"overlayfs=maybe", "overlayfs=maybe: not one of yes/no", func(c Config) bool { return c.Overlay == OverlayOn && c.OverlayUnknown }},
		{"rw overlayfs=yse", "using yes (PROTECTED", func(c Config) bool { return c.Overlay.Protected() && c.OverlayUnknown && c.ReadWrite }},
		{"overlayfs=no overlayfs=maybe", "fails closed", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"overlayfs=maybe overlayfs=no", "overlayfs=maybe", func(c Config) bool { return c.Overlay == OverlayOff && !c.OverlayUnknown }},
		{"overlayfs= rw", "overlayfs=: not one of", func(c Config) bool { return c.Overlay == OverlayOn }},
		{"ofs-size-reserve=lots", "ofs-size-reserve=lots: not a size", func(c Config) bool { return c.Reserve == Size{} && !c.ReserveOff }},
		{"ofs-rescue=panic", "ofs-rescue=panic: not one of reboot, halt, shell; using reboot", func(c Config) bool { return c.Rescue == RescueReboot }},
		{"ofs-rescue-delay=soon", "ofs-rescue-delay=soon: not a whole number of seconds; using 10s", func(c Config) bool { return c.RescueDelay == 10*time.Second }},
		{"rootwait=x", "rootwait=x: not a whole number", func(c Config) bool { return c.RootWait && c.RootWaitTimeout == 0 }},
		{"rootdelay=-1", "rootdelay=-1: not a whole number", func(c Config) bool { return c.RootDelay == 0 }},
	} {
		c, w := Parse(tc.line)
		if len(w) != 1 {
			t.Errorf("Parse(%q): %d warnings %v, want 1", tc.line, len(w), w)
			continue
		}
		if !strings.Contains(w[0].String(), tc.want) {
			t.Errorf("Parse(%q) warning %q, want it to contain %q", tc.line, w[0], tc.want)
		}
		if !tc.ok(c) {
			t.Errorf("Parse(%q) did not fall back to the default: %+v", tc.line, c)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"overlayfs=yes ofs-size=20 root=/dev/vda", `a="b c" -- d`, "ofs-size=99999999999999999999999K", "\x00=\x00"} {
		f.Add(s)
	}
	f.Add("rw overlayfs=yse")
	f.Add("overlayfs=no overlayfs=\x00 rw")
	f.Add("ofs-upper=zram:zstd ofs-upper-dir=../x ofs-reset")
	f.Add("ofs-upper=PARTUUID=0a0b0c0d-03 ofs-upper-dir=/layer/")
	f.Add("ofs-mounts=/boot:protect,/var/log:ro overlayroot=tmpfs:recurse=0 systemd.volatile=overlay")
	f.Fuzz(func(t *testing.T, s string) {
		c, _ := Parse(s)
		// Fail closed: the last overlayfs word decides, and only a word
		// that reads as "off" leaves the root unprotected.
		last, seen := "", false
		for _, w := range Split(s) {
			if w == "--" {
				break
			}
			if k, v, has := strings.Cut(w, "="); k == "overlayfs" {
				seen, last = true, v
				if !has {
					last = "yes"
				}
			}
		}
		if on, ok := ParseBool(last); seen && !(ok && !on) && !c.Overlay.Protected() {
			t.Fatalf("overlayfs=%q left the root unprotected: %+v", last, c)
		}
		if c.OverlayUnknown && c.Overlay != OverlayOn {
			t.Fatalf("unknown protection word but overlay %v", c.Overlay)
		}
		if m, ok := c.RAMCap(1<<30, 1<<29); ok && (m == 0 || m > 1<<29) {
			t.Fatalf("RAMCap %d of 1G", m)
		}
		if c.Size.Bytes == 0 && (c.Size.Percent < 1 || c.Size.Percent > 100) {
			t.Fatalf("size out of range: %+v", c.Size)
		}
		switch c.Rescue {
		case RescueReboot, RescueHalt, RescueShell:
		default:
			t.Fatalf("rescue %q", c.Rescue)
		}
		checkUpper(t, c)     // upper_test.go
		checkMounts(t, s, c) // mounts_test.go
	})
}
