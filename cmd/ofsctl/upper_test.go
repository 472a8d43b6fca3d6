package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/boot"
	"github.com/ofsroot/ofsroot/pkg/bootstatus"
)

func TestUpperVarMatchesTheScripts(t *testing.T) {
	if upperResetVar != boot.VarReset || !strings.Contains(boot.Source(), "${"+upperResetVar+"}") {
		t.Error("ofsctl and boot/boot.cmd disagree on the reset variable")
	}
	for _, f := range []struct{ path, want string }{{"../../dist/flash-kernel/ofsroot", "${" + upperResetVar + "}"}, {"../../dist/grub/06_ofsroot", "load_env " + grubNames[upperResetVar]}} {
		b, err := os.ReadFile(f.path)
		if err != nil || !strings.Contains(string(b), f.want) {
			t.Errorf("%s does not read %s: %v", f.path, f.want, err)
		}
	}
}

// TestUpperReset: upper reset arms ofs-reset in the U-Boot environment,
// keep clears it; the layer of this boot is shown from the status file.
func TestUpperReset(t *testing.T) {
	l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd")
	status := filepath.Join(t.TempDir(), "status.json")
	bootstatus.WriteFile(status, &bootstatus.Status{Mode: bootstatus.Protected,
		Upper: &bootstatus.Upper{Kind: bootstatus.UpperDevice, Asked: "LABEL=up", Device: "/dev/vdb", FSType: "ext4", Dir: "ofsroot", State: bootstatus.UpperReused}})
	steps := []struct {
		words []string
		set   bool
		out   string
	}{
		{[]string{"upper", "--status", status}, false, "next boot: keeps the persistent layer (ofs-reset is not set, U-Boot)"},
		{[]string{"upper", "--status", status, "reset"}, true, "next boot: empties the persistent layer (ofs-reset is set, U-Boot)"},
		{[]string{"upper", "--status", status}, true, "this boot: a persistent layer on /dev/vdb (ext4), folder ofsroot, reused"},
		{[]string{"upper", "--status", status, "keep"}, false, "next boot: keeps"},
	}
	for _, st := range steps {
		code, out, errOut := l.run(t, st.words...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", st.words, code, errOut)
		}
		if !strings.Contains(out, st.out) {
			t.Errorf("%q: output lacks %q:\n%s", st.words, st.out, out)
		}
		e := l.env(t)
		if v, ok := e.Get("ofs-reset"); ok != st.set || ok && v != "1" {
			t.Errorf("after %q: ofs-reset=%q set %v", st.words, v, ok)
		}
		if v, _ := e.Get("bootcmd"); v != "run distro_bootcmd" {
			t.Errorf("after %q: U-Boot's own variables were lost", st.words)
		}
	}
	// Without a persistent layer this boot, reset still arms, with a note.
	code, out, errOut := l.run(t, "upper", "--status", filepath.Join(t.TempDir(), "none"), "reset")
	if code != 0 || !strings.Contains(out, "this boot: unknown") || !strings.Contains(errOut, "no persistent layer") {
		t.Errorf("no status: exit %d %q %q", code, out, errOut)
	}
	if code, _, _ := l.run(t, "upper", "wipe"); code != 2 {
		t.Errorf("upper wipe: exit %d, want 2", code)
	}
	if code, _, errOut := l.run(t, "upper", "--help"); code != 0 || !strings.Contains(errOut, "Usage: ofsctl upper") {
		t.Errorf("--help: exit %d %q", code, errOut)
	}
}

// TestUpperResetGrub: on a GRUB machine reset sets ofs_reset in GRUB's
// environment block, which the real grub-editenv reads back.
func TestUpperResetGrub(t *testing.T) {
	if _, err := exec.LookPath("grub-editenv"); err != nil {
		t.Fatal("grub-editenv is not installed: run scripts/setup-host.sh (grub-common)")
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "grubenv")
	for _, st := range []struct{ word, list string }{{"reset", "ofs_reset=1\n"}, {"keep", ""}} {
		var out, errOut strings.Builder
		if code := program.Main([]string{"upper", "-c", filepath.Join(dir, "none"), "--grubenv", env, "--status", filepath.Join(dir, "none"), st.word}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d %s", st.word, code, errOut.String())
		}
		if !strings.Contains(out.String(), "(GRUB)") && !strings.Contains(out.String(), ", GRUB)") {
			t.Errorf("%s: %s", st.word, out.String())
		}
		list, err := exec.Command("grub-editenv", env, "list").CombinedOutput()
		if err != nil || string(list) != st.list {
			t.Errorf("%s: grub-editenv list: %v %q, want %q", st.word, err, list, st.list)
		}
	}
}

func TestDescribeUpper(t *testing.T) {
	for _, c := range []struct {
		u    *bootstatus.Upper
		want string
	}{
		{nil, "a RAM layer (no ofs-upper=DEVICE)"},
		{&bootstatus.Upper{Kind: bootstatus.UpperRAM, Asked: "LABEL=x", Fallback: "not found"}, "a RAM layer standing in (degraded): not found"},
		{&bootstatus.Upper{Kind: bootstatus.UpperZram}, "a zram layer"},
		{&bootstatus.Upper{Kind: bootstatus.UpperDevice, Device: "/dev/sda2", FSType: "ext4", Dir: "o", State: bootstatus.UpperSetAside, SetAside: "o.20261130-010203"}, "set-aside; the one made on another lower was set aside as o.20261130-010203"},
	} {
		if got := describeUpper(c.u); !strings.Contains(got, c.want) {
			t.Errorf("describeUpper(%+v) = %q, want %q", c.u, got, c.want)
		}
	}
}
