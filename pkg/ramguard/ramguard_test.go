package ramguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs/mountfstest"
)

func TestParseConfig(t *testing.T) {
	d := Default()
	for _, c := range []struct {
		name, in string
		want     func(*Config)
		err      string
	}{
		{"empty", "", func(*Config) {}, ""},
		{"comments and blanks", "# comment\n\n   # more\n", func(*Config) {}, ""},
		{"every key", "path = /run/rw\ninterval=5m\nwarn_use = 70%\nact_use=90\nwarn_inodes = 60.5%\nact_inodes=99%\naction = command\ncommand = /usr/local/sbin/clean --all # trailing\nreboot_command = systemctl reboot\n",
			func(c *Config) {
				*c = Config{Path: "/run/rw", Interval: 5 * time.Minute, WarnUse: 70, ActUse: 90, WarnInodes: 60.5, ActInodes: 99, Action: ActionCommand, Command: "/usr/local/sbin/clean --all", RebootCommand: "systemctl reboot"}
			}, ""},
		{"reboot", "action=reboot", func(c *Config) { c.Action = ActionReboot }, ""},
		{"log", "action=log", func(c *Config) { c.Action = ActionLog }, ""},
		{"disable a threshold", "warn_inodes=0\nact_inodes=0", func(c *Config) { c.WarnInodes, c.ActInodes = 0, 0 }, ""},
		{"no equals", "path /x", nil, `line 1 "path /x": want key = value`},
		{"empty key", "= 3", nil, "want key = value"},
		{"relative path", "path=x", nil, "absolute"},
		{"bad interval", "interval=soon", nil, "interval"},
		{"tiny interval", "interval=10ms", nil, "at least 1s"},
		{"percent > 100", "warn_use=120%", nil, "0 to 100"},
		{"negative percent", "act_inodes=-1", nil, "0 to 100"},
		{"not a number", "act_use=lots", nil, "0 to 100"},
		{"unknown action", "action=panic", nil, "log, command or reboot"},
		{"unknown key", "\nsize=3", nil, `line 2 "size=3": unknown key`},
		{"command without command", "action=command", nil, "needs a command"},
		{"warn above act", "warn_use=96", nil, "warn_use 96% is above act_use 95%"},
		{"warn above act, inodes", "act_inodes=50", nil, "warn_inodes 80% is above act_inodes 50%"},
		{"empty reboot", "reboot_command=", nil, "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := d
			c.want(&want)
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLevelOf(t *testing.T) {
	c := Default()
	for _, x := range []struct {
		use, inodes float64
		want        Level
	}{{0, 0, OK}, {79.9, 79.9, OK}, {80, 0, Warn}, {0, 80, Warn}, {94.9, 94.9, Warn}, {95, 0, Act}, {0, 100, Act}} {
		if got := c.LevelOf(Use{UsePercent: x.use, InodePercent: x.inodes}); got != x.want {
			t.Errorf("use %g%% inodes %g%%: %v, want %v", x.use, x.inodes, got, x.want)
		}
	}
	c.WarnUse, c.ActUse = 0, 0
	if got := c.LevelOf(Use{UsePercent: 100}); got != OK {
		t.Errorf("disabled thresholds gave %v", got)
	}
}

// TestGuardFiresAtThreshold fills a real 1 MiB tmpfs step by step and
// checks the guard warns past warn_use, runs its command once past
// act_use, and re-arms when space is freed; then the same for inodes.
func TestGuardFiresAtThreshold(t *testing.T) {
	mountfstest.PrivateNamespace(t)
	dir := t.TempDir()
	layer := filepath.Join(dir, "rw")
	os.Mkdir(layer, 0o755)
	if err := unix.Mount("tmpfs", layer, "tmpfs", 0, "size=1m,nr_inodes=100"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(layer, unix.MNT_DETACH) })
	marker := filepath.Join(dir, "fired")
	cfg, err := ParseConfig(strings.NewReader(fmt.Sprintf("path=%s\nwarn_use=50%%\nact_use=75%%\nwarn_inodes=50%%\nact_inodes=90%%\naction=command\ncommand=echo \"$OFSROOT_RAM_USE_PERCENT\" >> %s\n", layer, marker)))
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	g := &Guard{Config: cfg, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	fill := func(name string, kib int) {
		if err := os.WriteFile(filepath.Join(layer, name), make([]byte, kib<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fired := func() int {
		b, err := os.ReadFile(marker)
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		return strings.Count(string(b), "\n")
	}
	step := func(want Level, wantFired int) {
		t.Helper()
		lvl, err := g.Check()
		if err != nil {
			t.Fatal(err)
		}
		if lvl != want || fired() != wantFired {
			t.Fatalf("level %v, fired %d times; want %v, %d; log %q", lvl, fired(), want, wantFired, logs)
		}
	}
	step(OK, 0)
	fill("a", 400) // 39%
	step(OK, 0)
	fill("b", 200) // 59%
	step(Warn, 0)
	if len(logs) != 1 || !strings.Contains(logs[0], "warning") {
		t.Errorf("logs %q", logs)
	}
	fill("c", 200) // 78%
	step(Act, 1)
	fill("d", 100) // still past: no second run
	step(Act, 1)
	if b, _ := os.ReadFile(marker); !strings.HasPrefix(string(b), "7") {
		t.Errorf("the command got OFSROOT_RAM_USE_PERCENT=%q", b)
	}
	for _, n := range []string{"b", "c", "d"} {
		os.Remove(filepath.Join(layer, n))
	}
	step(OK, 1)
	fill("c", 600) // past again: runs again
	step(Act, 2)
	os.Remove(filepath.Join(layer, "c"))
	step(OK, 2)

	// Inodes: 100 in all; many empty files.
	for i := 0; i < 60; i++ {
		fill(fmt.Sprintf("i%d", i), 0)
	}
	step(Warn, 2)
	for i := 60; i < 92; i++ {
		fill(fmt.Sprintf("i%d", i), 0)
	}
	step(Act, 3)
}

func TestGuardActions(t *testing.T) {
	var ran []string
	for _, c := range []struct {
		action Action
		want   string
	}{{ActionLog, ""}, {ActionCommand, "clean"}, {ActionReboot, "reboot"}} {
		ran = nil
		cfg := Default()
		cfg.Action, cfg.Command = c.action, "clean"
		g := &Guard{Config: cfg, Exec: func(cmd string, env []string) error { ran = append(ran, cmd); return nil }}
		g.Statfs = statfsFull
		if lvl, err := g.Check(); err != nil || lvl != Act {
			t.Fatalf("%v %v", lvl, err)
		}
		if strings.Join(ran, ",") != c.want {
			t.Errorf("action %s ran %q, want %q", c.action, ran, c.want)
		}
	}
}
