package boot

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/pkg/uimage"
)

var epoch = time.Unix(1704067200, 0)

func ubootBoards(t *testing.T) []board.Board {
	t.Helper()
	all, err := board.All()
	if err != nil {
		t.Fatal(err)
	}
	var out []board.Board
	for _, b := range all {
		if b.UBoot != nil {
			out = append(out, b)
		}
	}
	if len(out) < 3 {
		t.Fatalf("%d boards boot with U-Boot, want nitrogen6x, nitrogen6_max and sabrelite", len(out))
	}
	return out
}

// TestScript renders every U-Boot board's script and checks what it
// loads where, and what it reads from the environment.
func TestScript(t *testing.T) {
	for _, b := range ubootBoards(t) {
		s, err := Script(b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		u := b.UBoot
		for _, want := range []string{
			"ofsroot: boot script for " + b.Name,
			`setenv bootargs "console=` + b.Console + ` root=${ofs_root} rootwait"`,
			"load ${devtype} ${devnum}:${distro_bootpart} " + u.KernelAddr.String() + " ${prefix}zImage",
			"load ${devtype} ${devnum}:${distro_bootpart} " + u.FDTAddr.String() + " ${prefix}" + b.DeviceTree,
			"load ${devtype} ${devnum}:${distro_bootpart} " + u.RamdiskAddr.String() + " ${prefix}uInitrd",
			"bootz " + u.KernelAddr.String() + " " + u.RamdiskAddr.String() + " " + u.FDTAddr.String(),
			// The overlay words only when the variables are set.
			`if test -n "${ofs_overlay}"; then setenv bootargs "${bootargs} overlayfs=${ofs_overlay}"; fi`,
			`if test -n "${ofs-size}"; then setenv bootargs "${bootargs} ofs-size=${ofs-size}"; fi`,
			`ofs_overlay="${overlayfs}"`,
			// The one-shot: deleted and saved, and only then overlay off.
			"setenv ofs-once\n",
			"if saveenv; then",
			"ofs_overlay=no",
			`ofs_root="${ofs-root}"`,
			"part uuid ${devtype} ${devnum}:${distro_bootpart} ofs_partuuid",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: the script lacks %q", b.Name, want)
			}
		}
		if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
			t.Errorf("%s: template left-overs:\n%s", b.Name, s)
		}
		checkHush(t, b.Name, s)
		// The flag is cleared before the overlay is turned off.
		if strings.Index(s, "setenv ofs-once\n") > strings.Index(s, "ofs_overlay=no") {
			t.Errorf("%s: ofs_overlay=no comes before the flag is cleared", b.Name)
		}
		// ofs-reset likewise: cleared and saved before ofs-reset=1 is
		// passed, and passed only then.
		clear, set, pass := strings.Index(s, "setenv ofs-reset\n"), strings.Index(s, "\t\t\tofs_reset=1\n"), strings.Index(s, `if test "${ofs_reset}" = 1; then setenv bootargs "${bootargs} ofs-reset=1"; fi`)
		if clear < 0 || set < clear || pass < set || !strings.Contains(s[clear:set], "if saveenv; then") {
			t.Errorf("%s: ofs-reset handling at %d, %d, %d", b.Name, clear, set, pass)
		}
	}
}

// checkHush checks the block structure: every if has its then and fi,
// and nothing uses exit (which U-Boot's hush ignores inside an if).
func checkHush(t *testing.T, name, s string) {
	t.Helper()
	depth := 0
	for i, line := range strings.Split(s, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		// U-Boot's hush opens a single-quoted string at a ' even inside
		// double quotes, and fails the whole script with "syntax error"
		// when it does not close.
		if strings.Count(l, "'")%2 != 0 {
			t.Errorf("%s line %d: an unpaired ' (U-Boot's hush reads it as a quote even inside \"...\"): %s", name, i+1, l)
		}
		for _, w := range strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == ';' }) {
			switch w {
			case "if":
				depth++
			case "fi":
				depth--
			case "exit":
				t.Errorf("%s line %d: exit does not leave a script from inside an if in U-Boot's hush", name, i+1)
			}
		}
		if depth < 0 {
			t.Fatalf("%s line %d: fi without if", name, i+1)
		}
	}
	if depth != 0 {
		t.Errorf("%s: %d if without fi", name, depth)
	}
}

func TestScriptOptions(t *testing.T) {
	b, _ := board.Lookup("nitrogen6x")
	s, err := Script(b, Options{Root: "PARTUUID=0fa11ed5-01", Append: []string{"ro", "probe.run=/usr/bin/ofsctl,env,print"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`if test -z "${ofs_root}"; then ofs_root="PARTUUID=0fa11ed5-01"; fi`,
		`root=${ofs_root} rootwait ro probe.run=/usr/bin/ofsctl,env,print"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
	if strings.Contains(s, "part uuid") {
		t.Error("with a root given, the script still asks part uuid")
	}
	checkHush(t, "with --root", s)
	for _, bad := range []Options{
		{Root: "a b"}, {Root: `x"; reset; "`}, {Root: "${x}"}, {Append: []string{""}}, {Append: []string{"a;b"}}, {Append: []string{"q'"}},
	} {
		if _, err := Script(b, bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	x86, _ := board.Lookup("qemu-x86_64")
	if _, err := Script(x86, Options{}); err == nil || !strings.Contains(err.Error(), "U-Boot") {
		t.Errorf("a board without U-Boot: %v", err)
	}
}

// TestScrMatchesMkimage: boot.scr is what mkimage makes of boot.cmd.
func TestScrMatchesMkimage(t *testing.T) {
	testenv.NeedTools(t, "mkimage")
	b, _ := board.Lookup("nitrogen6x")
	s, err := Script(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scr, err := Scr(b, s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmdFile, out := filepath.Join(dir, "boot.cmd"), filepath.Join(dir, "boot.scr")
	os.WriteFile(cmdFile, []byte(s), 0o644)
	cmd := exec.Command("mkimage", "-A", "arm", "-O", "linux", "-T", "script", "-C", "none", "-a", "0", "-e", "0", "-n", ScriptName(b), "-d", cmdFile, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, o)
	}
	want, _ := os.ReadFile(out)
	if !bytes.Equal(scr, want) {
		t.Error("boot.scr differs from mkimage's")
	}
	list, err := exec.Command("mkimage", "-l", out).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "ARM Linux Script (uncompressed)") {
		t.Errorf("mkimage -l: %v\n%s", err, list)
	}
}

// TestWritePartition writes a boot partition from stand-in files, twice,
// and checks the files and that the bytes do not change.
func TestWritePartition(t *testing.T) {
	b, _ := board.Lookup("nitrogen6x")
	dir := t.TempDir()
	in := Inputs{
		Vmlinuz:     filepath.Join(dir, "vmlinuz"),
		DTB:         filepath.Join(dir, "board.dtb"),
		Initramfs:   filepath.Join(dir, "initrd"),
		Compression: "gzip",
		Time:        epoch,
	}
	os.WriteFile(in.Vmlinuz, []byte("zImage bytes"), 0o644)
	os.WriteFile(in.DTB, []byte("dtb bytes"), 0o644)
	os.WriteFile(in.Initramfs, []byte("\x1f\x8b initramfs"), 0o644)
	var sums [2][]byte
	for i := range sums {
		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		names, err := WritePartition(out, b, in)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"boot.cmd", "boot.scr", "uInitrd", "zImage", "imx6q-nitrogen6x.dtb"}; strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("names %q, want %q", names, want)
		}
		var all []byte
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, data...)
			if fi, _ := os.Stat(filepath.Join(out, n)); !fi.ModTime().Equal(epoch) {
				t.Errorf("%s stamped %v", n, fi.ModTime())
			}
		}
		sums[i] = all
		if z, _ := os.ReadFile(filepath.Join(out, "zImage")); string(z) != "zImage bytes" {
			t.Error("zImage is not the kernel")
		}
		rd, _ := os.ReadFile(filepath.Join(out, "uInitrd"))
		img, err := uimage.Decode(rd)
		if err != nil || img.Type != uimage.TypeRAMDisk || img.Comp != uimage.CompGzip || img.Arch != uimage.ArchARM || string(img.Data) != "\x1f\x8b initramfs" || img.Name != InitrdName {
			t.Errorf("uInitrd: %+v, %v", img, err)
		}
		scr, _ := os.ReadFile(filepath.Join(out, "boot.scr"))
		img, err = uimage.Decode(scr)
		cmd, _ := os.ReadFile(filepath.Join(out, "boot.cmd"))
		if script, err2 := img.Script(); err != nil || err2 != nil || !bytes.Equal(script, cmd) {
			t.Errorf("boot.scr does not hold boot.cmd: %v %v", err, err2)
		}
	}
	if !bytes.Equal(sums[0], sums[1]) {
		t.Error("two writes of the same inputs differ")
	}
	in.DTB = ""
	if _, err := WritePartition(filepath.Join(dir, "x"), b, in); err == nil {
		t.Error("no device tree: want an error")
	}
}

func TestRAMDiskComp(t *testing.T) {
	for c, want := range map[string]uimage.Comp{"gzip": uimage.CompGzip, "zstd": uimage.CompZstd, "xz": uimage.CompNone, "none": uimage.CompNone, "": uimage.CompNone} {
		if got := RAMDiskComp(c); got != want {
			t.Errorf("RAMDiskComp(%q) = %v, want %v", c, got, want)
		}
	}
}

// TestScriptProtectByDefault: with ProtectByDefault an unset overlayfs
// becomes overlayfs=yes before the words are made (and ofs-once can
// still turn it off); without it nothing sets it.
func TestScriptProtectByDefault(t *testing.T) {
	b := ubootBoards(t)[0]
	plain, err := Script(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	field, err := Script(b, Options{ProtectByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	const set = "\t\tofs_overlay=yes\n"
	if strings.Contains(plain, set) || strings.Contains(plain, "protected, as this script") {
		t.Errorf("the default script protects an unset overlayfs:\n%s", plain)
	}
	if !strings.Contains(plain, "no, or unset: a plain boot") {
		t.Errorf("the default script's header does not say unset is plain")
	}
	for _, want := range []string{set, `if test -z "${ofs_overlay}"; then`, "unset: protected, as yes", "ofsroot: overlayfs is not set"} {
		if !strings.Contains(field, want) {
			t.Errorf("the protect-by-default script lacks %q", want)
		}
	}
	// The default comes after overlayfs is read and before ofs-once and
	// the words.
	i, j, k := strings.Index(field, `ofs_overlay="${overlayfs}"`), strings.Index(field, set), strings.Index(field, `if test -n "${ofs-once}"`)
	if !(i >= 0 && i < j && j < k) {
		t.Errorf("order: overlayfs read at %d, default at %d, ofs-once at %d", i, j, k)
	}
	checkHush(t, b.Name, field)
}
