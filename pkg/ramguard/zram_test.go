package ramguard

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ofsroot/ofsroot/pkg/rootstatus"
	"github.com/ofsroot/ofsroot/pkg/zram"
)

// TestGuardZram: a zram layer whose filesystem is half empty is full
// when its device's RAM reaches the cap; the guard sees it there.
func TestGuardZram(t *testing.T) {
	half := func(string) (rootstatus.Statfs, error) {
		return rootstatus.Statfs{Bsize: 4096, Blocks: 1000, Bfree: 500, Bavail: 500, Files: 100, Ffree: 90}, nil
	}
	for _, c := range []struct {
		name string
		z    *zram.Stat
		err  error
		want Level
	}{
		{"tmpfs layer", nil, nil, OK},
		{"zram, RAM low", &zram.Stat{Device: "/dev/zram0", MemUsedBytes: 10, MemLimitBytes: 100, MemPercent: 10, Ratio: 3}, nil, OK},
		{"zram, RAM at 85% of the cap", &zram.Stat{Device: "/dev/zram0", MemUsedBytes: 85, MemLimitBytes: 100, MemPercent: 85, Ratio: 1.1}, nil, Warn},
		{"zram, RAM at the cap", &zram.Stat{Device: "/dev/zram0", MemUsedBytes: 100, MemLimitBytes: 100, MemPercent: 100, Ratio: 1}, nil, Act},
		{"zram, no cap", &zram.Stat{Device: "/dev/zram0", MemUsedBytes: 100}, nil, OK},
	} {
		var logs []string
		g := &Guard{Config: Default(), Statfs: half,
			Zram: func(path string) (*zram.Stat, error) {
				if path != "/mnt/root-RW" {
					t.Errorf("zram asked for %q", path)
				}
				return c.z, c.err
			},
			Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
		lvl, err := g.Check()
		if err != nil || lvl != c.want {
			t.Errorf("%s: level %v, %v; want %v", c.name, lvl, err, c.want)
		}
		if c.want != OK && !strings.Contains(strings.Join(logs, "\n"), "zram /dev/zram0") {
			t.Errorf("%s: logs %q do not name the device", c.name, logs)
		}
	}
	g := &Guard{Config: Default(), Statfs: half, Zram: func(string) (*zram.Stat, error) { return nil, errors.New("mm_stat unreadable") }}
	if _, err := g.Check(); err == nil || !strings.Contains(err.Error(), "mm_stat unreadable") {
		t.Errorf("a zram read error: %v", err)
	}
}
