package ramguard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/ofsroot/ofsroot/pkg/rootstatus"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// Level is how full the layer is.
type Level int

const (
	OK Level = iota
	Warn
	Act
)

func (l Level) String() string { return [...]string{"ok", "warning", "action"}[l] }

// Use is one look at the layer.
type Use struct {
	UsePercent, InodePercent float64
	UsedBytes, SizeBytes     uint64
	InodesUsed, Inodes       uint64
	// For a zram layer: the RAM its device takes and its cap
	// (mem_limit), and the first as a share of the second.
	MemUsedBytes, MemLimitBytes uint64
	MemPercent                  float64
}

// LevelOf compares a look with the thresholds.
func (c Config) LevelOf(u Use) Level {
	over := func(v, t float64) bool { return t > 0 && v >= t }
	switch {
	case over(u.UsePercent, c.ActUse) || over(u.MemPercent, c.ActUse) || over(u.InodePercent, c.ActInodes):
		return Act
	case over(u.UsePercent, c.WarnUse) || over(u.MemPercent, c.WarnUse) || over(u.InodePercent, c.WarnInodes):
		return Warn
	}
	return OK
}

// Guard watches one layer. The function fields are seams; nil ones
// get the real thing.
type Guard struct {
	Config Config
	Statfs func(path string) (rootstatus.Statfs, error)
	// Zram reads the zram device mounted at a path (nil, nil when there
	// is none): a zram layer is also full when its RAM reaches its cap.
	Zram func(path string) (*zram.Stat, error)
	Logf func(format string, args ...any)
	// Exec runs a shell command line with extra environment.
	Exec func(cmdline string, env []string) error

	level Level
	acted bool
}

// Check looks once, logs a change of level, and runs the action when the
// action threshold is first crossed. It returns the level.
func (g *Guard) Check() (Level, error) {
	statfs := g.Statfs
	if statfs == nil {
		statfs = rootstatus.StatfsOf
	}
	logf := g.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s, err := statfs(g.Config.Path)
	if err != nil {
		return g.level, fmt.Errorf("ramguard: %w", err)
	}
	u := Use{SizeBytes: s.Blocks * uint64(s.Bsize), UsedBytes: (s.Blocks - s.Bfree) * uint64(s.Bsize), Inodes: s.Files, InodesUsed: s.Files - s.Ffree}
	if u.SizeBytes > 0 {
		u.UsePercent = 100 * float64(u.UsedBytes) / float64(u.SizeBytes)
	}
	if u.Inodes > 0 {
		u.InodePercent = 100 * float64(u.InodesUsed) / float64(u.Inodes)
	}
	zramOf := g.Zram
	if zramOf == nil {
		zramOf = rootstatus.ZramAt
	}
	z, err := zramOf(g.Config.Path)
	if err != nil {
		return g.level, fmt.Errorf("ramguard: %w", err)
	}
	lvl := g.Config.LevelOf(u)
	desc := fmt.Sprintf("%s: %.1f%% of %d bytes used, %.1f%% of %d inodes", g.Config.Path, u.UsePercent, u.SizeBytes, u.InodePercent, u.Inodes)
	if z != nil {
		u.MemUsedBytes, u.MemLimitBytes, u.MemPercent = z.MemUsedBytes, z.MemLimitBytes, z.MemPercent
		lvl = g.Config.LevelOf(u)
		desc += fmt.Sprintf("; zram %s: %d bytes of RAM used of its cap of %d (%.1f%%), compression ratio %.2f", z.Device, u.MemUsedBytes, u.MemLimitBytes, u.MemPercent, z.Ratio)
	}
	switch {
	case lvl == OK && g.level != OK:
		logf("ramguard: back under the thresholds: %s", desc)
		g.acted = false
	case lvl >= Warn && g.level < Warn:
		logf("ramguard: warning: the RAM layer is filling up (warn at %g%% space, %g%% inodes): %s", g.Config.WarnUse, g.Config.WarnInodes, desc)
	}
	g.level = lvl
	if lvl == Act && !g.acted {
		g.acted = true
		logf("ramguard: action %s: the RAM layer is past act_use %g%% or act_inodes %g%%: %s", g.Config.Action, g.Config.ActUse, g.Config.ActInodes, desc)
		if err := g.act(u); err != nil {
			return lvl, fmt.Errorf("ramguard: action %s: %w", g.Config.Action, err)
		}
	}
	return lvl, nil
}

func (g *Guard) act(u Use) error {
	run := g.Exec
	if run == nil {
		run = shell
	}
	env := []string{
		fmt.Sprintf("OFSROOT_RAM_PATH=%s", g.Config.Path),
		fmt.Sprintf("OFSROOT_RAM_USE_PERCENT=%.1f", u.UsePercent),
		fmt.Sprintf("OFSROOT_RAM_INODE_PERCENT=%.1f", u.InodePercent),
		fmt.Sprintf("OFSROOT_RAM_MEM_PERCENT=%.1f", u.MemPercent),
	}
	switch g.Config.Action {
	case ActionCommand:
		return run(g.Config.Command, env)
	case ActionReboot:
		return run(g.Config.RebootCommand, env)
	}
	return nil
}

func shell(cmdline string, env []string) error {
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// Loop checks every Config.Interval until ctx ends. Errors are logged
// and the loop goes on.
func (g *Guard) Loop(ctx context.Context) error {
	t := time.NewTicker(g.Config.Interval)
	defer t.Stop()
	for {
		if _, err := g.Check(); err != nil && g.Logf != nil {
			g.Logf("%v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
