package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/bootlab"
)

// TestGrubSnippet runs the package's /etc/grub.d/06_ofsroot as
// grub-mkconfig would and checks what it writes with GRUB's own parser
// (grub-script-check), followed by a Linux entry as Debian's 10_linux
// writes it with /etc/default/grub.d/ofsroot.cfg: the entry gets the
// toggles through ${ofsroot_args}. Words from ofsroot.conf that could
// break out of the script are refused. Once the package is removed (its
// conffiles stay), both add nothing.
func TestGrubSnippet(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("grub-script-check"); err != nil {
		t.Fatal("grub-script-check is not installed: run scripts/setup-host.sh (grub-common)")
	}
	mod, err := bootlab.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// What /etc/default/grub.d/ofsroot.cfg makes of GRUB_CMDLINE_LINUX,
	// with the package installed (OFSROOT: the program, here any one).
	installed := append(os.Environ(), "OFSROOT=/bin/sh")
	cfgCmd := exec.Command("sh", "-c", `GRUB_CMDLINE_LINUX="console=ttyS0"; . "$1"; printf %s "$GRUB_CMDLINE_LINUX"`, "sh", filepath.Join(mod, "dist/grub/ofsroot.cfg"))
	cfgCmd.Env = installed
	cfg, err := cfgCmd.Output()
	if err != nil || string(cfg) != "console=ttyS0 ${ofsroot_args}" {
		t.Fatalf("GRUB_CMDLINE_LINUX after ofsroot.cfg: %q %v", cfg, err)
	}
	// Removed but not purged: the two conffiles stay, and update-grub
	// (the package's postrm runs it) must take the toggles out.
	cfgCmd = exec.Command(cfgCmd.Args[0], cfgCmd.Args[1:]...)
	cfgCmd.Env = append(os.Environ(), "OFSROOT=/nonexistent/ofsroot")
	if out, err := cfgCmd.Output(); err != nil || string(out) != "console=ttyS0" {
		t.Errorf("GRUB_CMDLINE_LINUX after ofsroot.cfg, the package removed: %q %v, want it as it was", out, err)
	}
	removed := exec.Command(filepath.Join(mod, "dist/grub/06_ofsroot"))
	removed.Env = append(os.Environ(), "OFSROOT=/nonexistent/ofsroot")
	if out, err := removed.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("06_ofsroot, the package removed: %q %v, want nothing", out, err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		cmdline string
		want    string // in the output
		refused bool
	}{
		{"", `set ofsroot_args="overlayfs=${ofs_overlay}"`, false},
		{"ofs-rescue=reboot quiet", `set ofsroot_args="${ofsroot_args} ofs-rescue=reboot quiet"`, false},
		{`x"; reboot; echo "`, "", true},
		{"$(reboot)", "", true},
	} {
		conf := filepath.Join(dir, "ofsroot.conf")
		os.WriteFile(conf, []byte("CMDLINE='"+strings.ReplaceAll(tc.cmdline, "'", `'\''`)+"'\n"), 0o644)
		cmd := exec.Command(filepath.Join(mod, "dist/grub/06_ofsroot"))
		cmd.Env = append(installed, "OFSROOT_CONF="+conf)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("06_ofsroot with CMDLINE %q: %v %s", tc.cmdline, err, stderr.String())
		}
		script := string(out) + "menuentry 'Debian GNU/Linux' {\n\tlinux\t/boot/vmlinuz-6.1.0-50-amd64 root=UUID=x ro " + string(cfg) + "\n\tinitrd\t/boot/initrd.img-6.1.0-50-amd64\n}\n"
		p := filepath.Join(dir, "grub.cfg")
		os.WriteFile(p, []byte(script), 0o644)
		if o, err := exec.Command("grub-script-check", p).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check (CMDLINE %q): %v %s\n%s", tc.cmdline, err, o, script)
		}
		if tc.refused {
			if strings.Contains(string(out), "reboot") || !strings.Contains(stderr.String(), "ignored") {
				t.Errorf("CMDLINE %q reached the script:\n%s%s", tc.cmdline, out, stderr.String())
			}
		} else if !strings.Contains(string(out), tc.want) {
			t.Errorf("CMDLINE %q: output lacks %q:\n%s", tc.cmdline, tc.want, out)
		}
		for _, v := range []string{"load_env overlayfs ofs_size ofs_once", "save_env ofs_once", "set ofs_overlay=no", "load_env ofs_reset", "save_env ofs_reset", `set ofsroot_args="${ofsroot_args} ofs-reset=1"`} {
			if !strings.Contains(string(out), v) {
				t.Errorf("output lacks %q", v)
			}
		}
	}
}
