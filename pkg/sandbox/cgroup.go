package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ofsroot/ofsroot/pkg/mountfs"
)

// Limits are what one sandbox instance may use, in a cgroup of its own.
// Zero leaves a limit unset.
type Limits struct {
	Memory int64 // bytes (memory.max; v1: memory.limit_in_bytes)
	Pids   int64 // tasks (pids.max)
}

// Cgroup is an instance's own cgroup: one folder on a cgroup v2 host,
// one per controller (memory, pids) on a cgroup v1 or hybrid host whose
// controllers are in v1 hierarchies.
type Cgroup struct {
	Dirs []string
	V2   bool
}

// cgroupMount is one cgroup hierarchy mounted on the host.
type cgroupMount struct {
	point, root string
	v2          bool
	opts        []string // v1 controllers
}

// cgroupMounts reads the cgroup hierarchies from mountinfo text.
func cgroupMounts(mountinfo string) []cgroupMount {
	var out []cgroupMount
	for _, line := range strings.Split(mountinfo, "\n") {
		m, err := mountfs.ParseMountinfoLine(line)
		if err != nil {
			continue
		}
		switch m.FSType {
		case "cgroup2":
			out = append(out, cgroupMount{point: m.Point, root: m.Root, v2: true})
		case "cgroup":
			out = append(out, cgroupMount{point: m.Point, root: m.Root, opts: strings.Split(m.SuperOptions, ",")})
		}
	}
	return out
}

// ownCgroups reads /proc/self/cgroup text: v1 controller (or "" for v2)
// to path.
func ownCgroups(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// CgroupDirs decides where an instance's cgroup goes: on cgroup v2 with
// the memory and pids controllers, POINT/ofsroot-sandbox/NAME (a subtree
// at the top, as systemd's machine.slice, since a cgroup holding
// processes cannot delegate controllers); else, for each v1 hierarchy
// of memory and pids, under the caller's own cgroup there (v1 has no such
// rule, and the caller's limits keep applying).
func CgroupDirs(mountinfo, self, name string, controllersV2 func(point string) string) (dirs []string, v2 bool, err error) {
	mounts := cgroupMounts(mountinfo)
	own := ownCgroups(self)
	for _, m := range mounts {
		if !m.v2 {
			continue
		}
		have := strings.Fields(controllersV2(m.point))
		if contains(have, "memory") && contains(have, "pids") {
			return []string{filepath.Join(m.point, "ofsroot-sandbox", name)}, true, nil
		}
	}
	for _, c := range []string{"memory", "pids"} {
		found := false
		for _, m := range mounts {
			if m.v2 || !contains(m.opts, c) {
				continue
			}
			rel := strings.TrimPrefix(own[c], m.root)
			dirs = append(dirs, filepath.Join(m.point, rel, "ofsroot-sandbox-"+name))
			found = true
			break
		}
		if !found {
			return nil, false, fmt.Errorf("no cgroup hierarchy has the %s controller (neither cgroup2 with it enabled nor a v1 mount): mount one, or run without limits", c)
		}
	}
	return dirs, false, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// instanceCgroup is where the cgroup of instance name goes on this host.
func instanceCgroup(name string) ([]string, bool, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, false, err
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, false, err
	}
	return CgroupDirs(string(mi), string(self), name, func(p string) string {
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.controllers"))
		return string(b)
	})
}

// RemoveStaleCgroup removes what a runner killed before it could clean
// up left of instance name's cgroup (its processes are killed). It
// returns whether there was one.
func RemoveStaleCgroup(name string) (bool, error) {
	dirs, v2, err := instanceCgroup(name)
	if err != nil {
		return false, nil // no hierarchy: nothing can be left
	}
	var left []string
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return false, nil
	}
	return true, (&Cgroup{Dirs: left, V2: v2}).Remove()
}

// NewCgroup makes the instance's cgroup and sets its limits.
func NewCgroup(name string, l Limits) (*Cgroup, error) {
	dirs, v2, err := instanceCgroup(name)
	if err != nil {
		return nil, err
	}
	cg := &Cgroup{Dirs: dirs, V2: v2}
	if v2 {
		parent := filepath.Dir(dirs[0])
		// Enable memory and pids for the children of the top and of
		// the ofsroot-sandbox subtree.
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
		for _, p := range []string{filepath.Dir(parent), parent} {
			if err := os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
				return nil, fmt.Errorf("enabling memory and pids in %s: %w", p, err)
			}
		}
	}
	for _, d := range dirs {
		// A cgroup left by a runner killed with SIGKILL: empty it.
		if _, err := os.Stat(d); err == nil {
			(&Cgroup{Dirs: []string{d}, V2: v2}).Remove()
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("making cgroup %s: %w", d, err)
		}
	}
	set := func(file, v string) error {
		for _, d := range dirs {
			p := filepath.Join(d, file)
			if _, err := os.Stat(p); err != nil {
				continue // the other controller's folder (v1)
			}
			if err := os.WriteFile(p, []byte(v), 0); err != nil {
				return fmt.Errorf("writing %s to %s: %w", v, p, err)
			}
			return nil
		}
		return fmt.Errorf("no %s in %v", file, dirs)
	}
	if l.Memory > 0 {
		mem := "memory.max"
		if !v2 {
			mem = "memory.limit_in_bytes"
		}
		if err := set(mem, strconv.FormatInt(l.Memory, 10)); err != nil {
			cg.Remove()
			return nil, err
		}
		if v2 {
			// No swap either: a memory hog ends at the limit.
			set("memory.swap.max", "0")
		}
	}
	if l.Pids > 0 {
		if err := set("pids.max", strconv.FormatInt(l.Pids, 10)); err != nil {
			cg.Remove()
			return nil, err
		}
	}
	return cg, nil
}

// Add moves process pid (all its threads) into the cgroup.
func (c *Cgroup) Add(pid int) error {
	for _, d := range c.Dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("moving pid %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

// Procs lists the processes in the cgroup.
func (c *Cgroup) Procs() []int {
	var out []int
	seen := map[int]bool{}
	for _, d := range c.Dirs {
		f, err := os.Open(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if n, err := strconv.Atoi(sc.Text()); err == nil && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		f.Close()
	}
	return out
}

// Remove kills what is left in the cgroup and removes it.
func (c *Cgroup) Remove() error {
	var errs []error
	for try := 0; try < 100; try++ {
		procs := c.Procs()
		if len(procs) == 0 {
			break
		}
		for _, p := range procs {
			unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range c.Dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
