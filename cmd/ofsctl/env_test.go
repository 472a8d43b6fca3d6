package main

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/ubootenv"
)

// envLab is an environment in a file, as the nitrogen6q U-Boot keeps it
// in SPI NOR (offset 0xC0000, 0x2000 bytes), with its fw_env.config.
type envLab struct {
	dir, img, cfg, defaults string
}

func newEnvLab(t *testing.T, redundant bool, vars ...string) *envLab {
	t.Helper()
	envLockPath = ""
	dir := t.TempDir()
	l := &envLab{dir: dir, img: filepath.Join(dir, "spi.img"), cfg: filepath.Join(dir, "fw_env.config"), defaults: filepath.Join(dir, "u-boot-initial-env")}
	os.WriteFile(l.img, bytes.Repeat([]byte{0xff}, 0x200000), 0o644)
	text := l.img + " 0xC0000 0x2000 0x1000\n"
	if redundant {
		text += l.img + " 0xC2000 0x2000 0x1000\n"
	}
	os.WriteFile(l.cfg, []byte(text), 0o644)
	if len(vars) > 0 {
		cfg, err := ubootenv.ReadConfig(l.cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ubootenv.Open(cfg, ubootenv.Options{Empty: true})
		if err != nil {
			t.Fatal(err)
		}
		e := s.Env()
		for i := 0; i+1 < len(vars); i += 2 {
			e.Set(vars[i], vars[i+1])
		}
		if err := s.Save(e); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// run runs ofsctl with -c (and -f) added after the subcommand words.
func (l *envLab) run(t *testing.T, words ...string) (int, string, string) {
	t.Helper()
	// Flags go after "env print" / "env set" / "overlay".
	n := 1
	if words[0] == "env" && len(words) > 1 {
		n = 2
	}
	args := append(append(append([]string{}, words[:n]...), "-c", l.cfg, "-f", l.defaults), words[n:]...)
	if len(words) == 1 && words[0] == "env" {
		args = words
	}
	var stdout, stderr bytes.Buffer
	code := program.Main(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func (l *envLab) env(t *testing.T) *ubootenv.Env {
	t.Helper()
	cfg, _ := ubootenv.ReadConfig(l.cfg)
	s, err := ubootenv.Open(cfg, ubootenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Env()
}

func TestEnvPrint(t *testing.T) {
	l := newEnvLab(t, false, "bootcmd", "run distro_bootcmd", "overlayfs", "yes", "ofs-size", "20")
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"env", "print"}, 0, "bootcmd=run distro_bootcmd\nofs-size=20\noverlayfs=yes\n", ""},
		{[]string{"env", "printenv", "overlayfs", "ofs-size"}, 0, "overlayfs=yes\nofs-size=20\n", ""},
		{[]string{"env", "print", "-n", "ofs-size"}, 0, "20\n", ""},
		{[]string{"env", "print", "ofs-once", "overlayfs"}, 1, "overlayfs=yes\n", `## Error: "ofs-once" not defined`},
		{[]string{"env", "print", "-n"}, 2, "", "-n needs a NAME"},
		{[]string{"env", "print", "--bogus"}, 2, "", "flag provided but not defined"},
	} {
		code, stdout, stderr := l.run(t, tc.args...)
		if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestEnvSet(t *testing.T) {
	l := newEnvLab(t, true, "bootcmd", "run distro_bootcmd", "bootdelay", "3")
	if code, out, errOut := l.run(t, "env", "set", "overlayfs", "yes"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("set: %d %q %q", code, out, errOut)
	}
	if code, _, _ := l.run(t, "env", "setenv", "extbootargs", "quiet", "loglevel=3"); code != 0 {
		t.Fatal("set with two value words failed")
	}
	if code, _, _ := l.run(t, "env", "set", "bootdelay"); code != 0 {
		t.Fatal("delete failed")
	}
	e := l.env(t)
	if v, _ := e.Get("overlayfs"); v != "yes" {
		t.Errorf("overlayfs = %q", v)
	}
	if v, _ := e.Get("extbootargs"); v != "quiet loglevel=3" {
		t.Errorf("extbootargs = %q (the words are joined with a space)", v)
	}
	if _, ok := e.Get("bootdelay"); ok {
		t.Error("bootdelay not deleted")
	}
	// Setting what is already there writes nothing.
	before, _ := os.ReadFile(l.img)
	for _, args := range [][]string{{"env", "set", "overlayfs", "yes"}, {"env", "set", "not-there"}} {
		if code, _, errOut := l.run(t, args...); code != 0 {
			t.Fatalf("%q: %d %s", args, code, errOut)
		}
	}
	if after, _ := os.ReadFile(l.img); !bytes.Equal(before, after) {
		t.Error("an unchanged environment was written")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"env", "set"}, "needs a NAME"},
		{[]string{"env", "set", "a=b", "c"}, "may not contain '='"},
		{[]string{"env"}, "env needs print or set"},
		{[]string{"env", "show"}, "want print or set"},
	} {
		code, _, errOut := l.run(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestEnvReadOnly: a variable .flags marks read-only cannot be changed.
func TestEnvReadOnly(t *testing.T) {
	l := newEnvLab(t, false, "ethaddr", "00:11:22:33:44:55", ".flags", "ethaddr:mo")
	code, _, errOut := l.run(t, "env", "set", "ethaddr", "66:77:88:99:aa:bb")
	if code != 1 || !strings.Contains(errOut, "read-only") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestEnvNoValidCopy: on erased flash, print and set fail unless there
// is a default environment; with one, set makes the environment valid.
func TestEnvNoValidCopy(t *testing.T) {
	l := newEnvLab(t, false)
	for _, args := range [][]string{{"env", "print"}, {"env", "set", "overlayfs", "yes"}, {"overlay", "on"}} {
		code, _, errOut := l.run(t, args...)
		if code != 1 || !strings.Contains(errOut, "no valid U-Boot environment") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
	os.WriteFile(l.defaults, []byte("bootcmd=run distro_bootcmd\n"), 0o644)
	code, out, errOut := l.run(t, "env", "print")
	if code != 0 || out != "bootcmd=run distro_bootcmd\n" || !strings.Contains(errOut, "using the default environment") {
		t.Errorf("print with defaults: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := l.run(t, "env", "set", "overlayfs", "yes"); code != 0 {
		t.Fatalf("set with defaults: %d %s", code, errOut)
	}
	e := l.env(t)
	if v, _ := e.Get("bootcmd"); v != "run distro_bootcmd" {
		t.Errorf("the defaults were not saved with the change: %q", e.Names())
	}
	if _, _, errOut := l.run(t, "env", "print"); errOut != "" {
		t.Errorf("valid now, yet: %q", errOut)
	}
	l.cfg = filepath.Join(l.dir, "missing.config")
	if code, _, errOut := l.run(t, "env", "print"); code != 2 || !strings.Contains(errOut, "missing.config") {
		t.Errorf("missing config: %d %q", code, errOut)
	}
}

// TestEnvWithLibubootenv: ofsctl and Debian's fw_printenv/fw_setenv
// read each other's writes.
func TestEnvWithLibubootenv(t *testing.T) {
	testenv.NeedTools(t, "fw_printenv", "fw_setenv")
	for _, redundant := range []bool{false, true} {
		t.Run(fmt.Sprintf("redundant=%v", redundant), func(t *testing.T) {
			l := newEnvLab(t, redundant, "bootcmd", "run distro_bootcmd")
			fw := func(name string, args ...string) string {
				out, err := exec.Command(name, append([]string{"-c", l.cfg}, args...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s %q: %v\n%s", name, args, err, out)
				}
				return string(out)
			}
			if code, _, _ := l.run(t, "overlay", "on"); code != 0 {
				t.Fatal("overlay on failed")
			}
			if got := fw("fw_printenv", "-n", "overlayfs"); got != "yes\n" {
				t.Errorf("fw_printenv -n overlayfs = %q", got)
			}
			fw("fw_setenv", "ofs-size", "20")
			if _, out, _ := l.run(t, "env", "print", "ofs-size", "overlayfs"); out != "ofs-size=20\noverlayfs=yes\n" {
				t.Errorf("ofsctl env print = %q", out)
			}
			l.run(t, "overlay", "once")
			if got := fw("fw_printenv", "-n", "ofs-once"); got != "1\n" {
				t.Errorf("fw_printenv -n ofs-once = %q", got)
			}
		})
	}
}

// TestEnvNoConfig: without fw_env.config, env and overlay say what they
// looked for and how to write one, as a usage error.
func TestEnvNoConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "fw_env.config")
	for _, args := range [][]string{{"env", "print", "-c", missing}, {"env", "set", "-c", missing, "overlayfs", "yes"}} {
		code, _, errOut := ofsctl(t, args...)
		if code != 2 || !strings.Contains(errOut, "no "+missing) || !strings.Contains(errOut, "--fw-env-config") {
			t.Errorf("%q: exit %d %q", args, code, errOut)
		}
	}
}
