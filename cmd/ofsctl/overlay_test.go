package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/board"
	"github.com/ofsroot/ofsroot/boot"
	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

func TestOverlayVarsMatchTheScript(t *testing.T) {
	if overlayVar != boot.VarOverlay || overlaySizeVar != boot.VarSize || overlayOnceVar != boot.VarOnce {
		t.Error("ofsctl and boot/boot.cmd disagree on the variable names")
	}
	for _, v := range []string{overlayVar, overlaySizeVar, overlayOnceVar} {
		if !strings.Contains(boot.Source(), "${"+v+"}") {
			t.Errorf("boot.cmd does not read ${%s}", v)
		}
	}
}

func TestOverlayWords(t *testing.T) {
	installedScript(t, plainScript(t))
	l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
	steps := []struct {
		args     []string
		vars     map[string]string // "" = must be unset
		nextBoot string
	}{
		{[]string{"overlay"}, map[string]string{"overlayfs": "", "ofs-size": "", "ofs-once": ""}, "next boot: plain (overlayfs is not set, which "},
		{[]string{"overlay", "on"}, map[string]string{"overlayfs": "yes"}, "next boot: protected, a RAM layer of 50% of RAM (the default)"},
		{[]string{"overlay", "size", "20"}, map[string]string{"ofs-size": "20"}, "next boot: protected, a RAM layer of 20% of RAM"},
		{[]string{"overlay", "size", "512M"}, map[string]string{"ofs-size": "512M"}, "a RAM layer of 512M"},
		{[]string{"overlay", "once"}, map[string]string{"ofs-once": "1", "overlayfs": "yes"}, "next boot: maintenance, the overlay off this once; then protected"},
		{[]string{"overlay", "on"}, map[string]string{"ofs-once": "", "overlayfs": "yes"}, "next boot: protected"},
		{[]string{"overlay", "once"}, map[string]string{"ofs-once": "1"}, "maintenance"},
		{[]string{"overlay", "off"}, map[string]string{"ofs-once": "", "overlayfs": "no"}, "next boot: plain (overlayfs=no)"},
		{[]string{"overlay", "once"}, map[string]string{"ofs-once": "1"}, "ofs-once is set but changes nothing while the overlay is off"},
	}
	for _, st := range steps {
		code, out, errOut := l.run(t, st.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", st.args, code, errOut)
		}
		if !strings.Contains(out, st.nextBoot) {
			t.Errorf("%q: output lacks %q:\n%s", st.args, st.nextBoot, out)
		}
		e := l.env(t)
		for name, want := range st.vars {
			got, ok := e.Get(name)
			if (want == "" && ok) || (want != "" && got != want) {
				t.Errorf("after %q: %s = %q (set: %v), want %q", st.args, name, got, ok, want)
			}
		}
		if v, _ := e.Get("bootcmd"); v != "run distro_bootcmd" {
			t.Errorf("after %q: U-Boot's own variables were lost", st.args)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"overlay", "size", "0"}, "out of range"},
		{[]string{"overlay", "size", "abc"}, "not a size"},
		{[]string{"overlay", "size"}, "overlay size"},
		{[]string{"overlay", "maybe"}, "overlay maybe"},
		{[]string{"overlay", "on", "now"}, "overlay on now"},
	} {
		code, _, errOut := l.run(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestNextBoot(t *testing.T) {
	for _, tc := range []struct {
		vars []string
		want string
	}{
		{nil, "plain (overlayfs is not set)"},
		{[]string{"overlayfs", "YES"}, "protected, a RAM layer of 50% of RAM (the default)"},
		{[]string{"overlayfs", "on", "ofs-size", "30%"}, "protected, a RAM layer of 30% of RAM"},
		{[]string{"overlayfs", "1", "ofs-size", "abc"}, "protected, a RAM layer of 50% of RAM (ofs-size=abc is not a size"},
		{[]string{"overlayfs", "maybe"}, "protected, a RAM layer of 50% of RAM (the default) (overlayfs=maybe is not a protection word: the init fails closed)"},
		{[]string{"overlayfs", "off", "ofs-once", "1"}, "plain (overlayfs=off); ofs-once is set but changes nothing"},
		{[]string{"overlayfs", "sandbox", "ofs-size", "20"}, "sandbox: the root's init runs in the firmware sandbox over a RAM layer of 20% of RAM"},
		{[]string{"overlayfs", "Sandbox", "ofs-once", "1"}, "maintenance, the overlay off this once; then sandbox"},
		{[]string{"overlayfs", "yes please"}, "protected, a RAM layer of 50% of RAM (the default) (overlayfs=yes please is not a protection word"},
		{[]string{"overlayfs", "yes", "ofs-size", "1G", "ofs-once", "x"}, "maintenance, the overlay off this once; then protected, a RAM layer of 1G"},
	} {
		e := ubootenv.New()
		for i := 0; i+1 < len(tc.vars); i += 2 {
			e.Set(tc.vars[i], tc.vars[i+1])
		}
		if got := NextBoot(e); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.vars, got, tc.want)
		}
	}
}

// TestOverlayFlagsAnywhere: flags may follow the words, as users type
// them ("ofsctl overlay on -c /etc/fw_env.config").
func TestOverlayFlagsAnywhere(t *testing.T) {
	l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
	for _, args := range [][]string{
		{"overlay", "on", "-c", l.cfg, "-f", l.defaults},
		{"overlay", "size", "-c", l.cfg, "30", "-f", l.defaults},
	} {
		var stdout, stderr bytes.Buffer
		if code := program.Main(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
	}
	e := l.env(t)
	if on, _ := e.Get("overlayfs"); on != "yes" {
		t.Errorf("overlayfs = %q, want yes", on)
	}
	if size, _ := e.Get("ofs-size"); size != "30" {
		t.Errorf("ofs-size = %q, want 30", size)
	}
}

// TestOverlayGrub: on a GRUB machine (no fw_env.config) the same words
// set GRUB's environment block, which the real grub-editenv reads back.
func TestOverlayGrub(t *testing.T) {
	if _, err := exec.LookPath("grub-editenv"); err != nil {
		t.Fatal("grub-editenv is not installed: run scripts/setup-host.sh (grub-common)")
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "grubenv")
	steps := []struct {
		words    []string
		list     string // grub-editenv list afterwards
		nextBoot string
	}{
		{nil, "", "next boot: protected, a RAM layer of 50% of RAM (the default)"},
		{[]string{"off"}, "overlayfs=no\n", "next boot: plain (overlayfs=no)"},
		{[]string{"size", "20"}, "overlayfs=no\nofs_size=20\n", "next boot: plain"},
		{[]string{"on"}, "overlayfs=yes\nofs_size=20\n", "next boot: protected, a RAM layer of 20% of RAM"},
		{[]string{"once"}, "overlayfs=yes\nofs_size=20\nofs_once=1\n", "next boot: maintenance, the overlay off this once; then protected"},
		{[]string{"off"}, "overlayfs=no\nofs_size=20\n", "next boot: plain"},
	}
	for _, st := range steps {
		var out, errOut strings.Builder
		args := append([]string{"overlay", "-c", filepath.Join(dir, "no-fw_env.config"), "--grubenv", env}, st.words...)
		if code := program.Main(args, &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d: %s", st.words, code, errOut.String())
		}
		if !strings.Contains(out.String(), st.nextBoot) {
			t.Errorf("%q: output lacks %q:\n%s", st.words, st.nextBoot, out.String())
		}
		if st.words == nil {
			if _, err := os.Stat(env); !os.IsNotExist(err) {
				t.Errorf("showing the toggles wrote %s", env)
			}
			continue
		}
		list, err := exec.Command("grub-editenv", env, "list").CombinedOutput()
		if err != nil || string(list) != st.list {
			t.Errorf("%q: grub-editenv list: %v %q, want %q", st.words, err, list, st.list)
		}
	}
	var errOut strings.Builder
	if code := program.Main([]string{"overlay", "-c", filepath.Join(dir, "none"), "--grubenv", filepath.Join(dir, "no/such/grubenv"), "on"}, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "no bootloader environment found") {
		t.Errorf("neither bootloader: exit %d %q", code, errOut.String())
	}
}

// plainScript is ofsroot's boot.scr for the Nitrogen6X, as text.
func plainScript(t *testing.T) string {
	t.Helper()
	b, err := board.Lookup("nitrogen6x")
	if err != nil {
		t.Fatal(err)
	}
	s, err := boot.Script(b, boot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// installedScript points ofsctl's search for the installed boot script
// at a temporary /boot holding script ("": none), with neither
// flash-kernel nor its snippet installed, for the test's duration.
func installedScript(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "boot.scr")
	if script != "" {
		os.WriteFile(path, []byte(script), 0o644)
	}
	oldPaths, oldFK, oldSnippets := bootScriptPaths, flashKernelPath, fkSnippetPaths
	bootScriptPaths = []string{path}
	flashKernelPath = filepath.Join(dir, "no-flash-kernel")
	fkSnippetPaths = []string{filepath.Join(dir, "no-snippet")}
	t.Cleanup(func() { bootScriptPaths, flashKernelPath, fkSnippetPaths = oldPaths, oldFK, oldSnippets })
	return dir
}

// TestClassifyScript: the scripts the project makes, as text and as
// the mkimage images U-Boot loads, read for what an unset overlayfs
// means: ofsroot's boot.scr plain, its --protect-by-default one and
// flash-kernel's script with the package's snippet protected, and
// flash-kernel's script without the snippet passes no toggle at all.
func TestClassifyScript(t *testing.T) {
	b, err := board.Lookup("nitrogen6x")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := boot.Script(b, boot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	field, err := boot.Script(b, boot.Options{ProtectByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := os.ReadFile("../../dist/flash-kernel/ofsroot")
	if err != nil {
		t.Fatal(err)
	}
	// flash-kernel's bootscr.uboot-generic, shortened: bootargs, then
	// the ubootenv.d snippets at @@UBOOT_ENV_EXTRA@@, then the load.
	fk := "setenv bootargs \"${bootargs} quiet\"\n@@SNIPPET@@\nload mmc 0:1 ${kernel_addr_r} vmlinuz-6.1.0-50-armmp\n"
	withSnippet := strings.Replace(fk, "@@SNIPPET@@", string(snippet), 1)
	withoutSnippet := strings.Replace(fk, "@@SNIPPET@@", "", 1)
	for _, tc := range []struct {
		name, script string
		want         unsetMeaning
	}{
		{"boot.scr", plain, unsetPlain},
		{"boot.scr --protect-by-default", field, unsetProtected},
		{"flash-kernel with the snippet", withSnippet, unsetProtected},
		{"flash-kernel without the snippet", withoutSnippet, noToggles},
		{"another script reading overlayfs", "setenv bootargs \"overlayfs=${overlayfs}\"", unsetUnknown},
	} {
		if got := classifyScript([]byte(tc.script)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		// As mkimage makes it: the text after a 64-byte header.
		img := append(append(bytes.Repeat([]byte{0x27}, 72), tc.script...), 0)
		if got := classifyScript(img); got != tc.want {
			t.Errorf("%s as an image: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestOverlayNextBootByScript: `ofsctl overlay`'s "next boot:" line
// with overlayfs unset follows the installed boot script, and with
// none, flash-kernel with the snippet; when nothing tells, it says so.
func TestOverlayNextBootByScript(t *testing.T) {
	b, _ := board.Lookup("nitrogen6x")
	field, _ := boot.Script(b, boot.Options{ProtectByDefault: true})
	snippet, err := os.ReadFile("../../dist/flash-kernel/ofsroot")
	if err != nil {
		t.Fatal(err)
	}
	show := func(t *testing.T, l *envLab) string {
		t.Helper()
		code, out, errOut := l.run(t, "overlay")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		return out
	}
	t.Run("plain boot.scr", func(t *testing.T) {
		dir := installedScript(t, plainScript(t))
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
		if out := show(t, l); !strings.Contains(out, "next boot: plain (overlayfs is not set, which "+filepath.Join(dir, "boot.scr")+" boots plain)") {
			t.Errorf("%s", out)
		}
	})
	t.Run("protect-by-default boot.scr", func(t *testing.T) {
		installedScript(t, field)
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd", "ofs-once", "1")
		if out := show(t, l); !strings.Contains(out, "next boot: maintenance, the overlay off this once; then protected, a RAM layer of 50% of RAM (the default) (overlayfs is not set, which ") {
			t.Errorf("%s", out)
		}
	})
	t.Run("flash-kernel and the snippet, no script yet", func(t *testing.T) {
		dir := installedScript(t, "")
		flashKernelPath = filepath.Join(dir, "flash-kernel")
		fkSnippetPaths = []string{filepath.Join(dir, "etc-ofsroot"), filepath.Join(dir, "ofsroot")}
		os.WriteFile(flashKernelPath, []byte("#!/bin/sh\n"), 0o755)
		os.WriteFile(fkSnippetPaths[1], snippet, 0o644)
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
		if out := show(t, l); !strings.Contains(out, "next boot: protected, a RAM layer of 50% of RAM (the default) (overlayfs is not set, which flash-kernel's boot script with "+fkSnippetPaths[1]+" boots as yes)") {
			t.Errorf("%s", out)
		}
		// Set, the value rules whatever the script's default.
		l.run(t, "overlay", "off")
		if out := show(t, l); !strings.Contains(out, "next boot: plain (overlayfs=no)") {
			t.Errorf("after overlay off: %s", out)
		}
	})
	t.Run("nothing tells", func(t *testing.T) {
		installedScript(t, "")
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
		if out := show(t, l); !strings.Contains(out, "next boot: plain or protected, as the boot script decides") || !strings.Contains(out, "--boot-script") {
			t.Errorf("%s", out)
		}
	})
	t.Run("an unreadable script", func(t *testing.T) {
		// A folder where the script would be: reading fails, which must
		// not keep overlay on from working.
		dir := installedScript(t, "")
		os.Mkdir(bootScriptPaths[0], 0o755)
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
		code, out, errOut := l.run(t, "overlay", "on")
		if code != 0 || !strings.Contains(out, "next boot: protected") {
			t.Errorf("overlay on with %s unreadable: exit %d %s %s", dir, code, out, errOut)
		}
		if out := show(t, l); !strings.Contains(out, "overlayfs=yes\n") {
			t.Errorf("%s", out)
		}
	})
	t.Run("a script without the toggles", func(t *testing.T) {
		installedScript(t, "setenv bootargs quiet\nbootz ${kernel_addr_r}\n")
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd", "overlayfs", "yes")
		if out := show(t, l); !strings.Contains(out, "next boot: plain: the boot script") || !strings.Contains(out, "does not read overlayfs") {
			t.Errorf("%s", out)
		}
	})
	t.Run("--boot-script", func(t *testing.T) {
		installedScript(t, plainScript(t))
		p := filepath.Join(t.TempDir(), "boot.scr")
		os.WriteFile(p, []byte(field), 0o644)
		l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
		code, out, errOut := l.run(t, "overlay", "--boot-script", p)
		if code != 0 || !strings.Contains(out, "next boot: protected, a RAM layer of 50% of RAM (the default) (overlayfs is not set, which "+p+" boots as yes)") {
			t.Errorf("exit %d %s %s", code, out, errOut)
		}
		code, _, errOut = l.run(t, "overlay", "--boot-script", p+".missing")
		if code == 0 || !strings.Contains(errOut, "reading the boot script") {
			t.Errorf("a missing --boot-script: exit %d %s", code, errOut)
		}
	})
}
