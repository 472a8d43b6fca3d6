package ubootenv

import (
	"github.com/ofsroot/ofsroot/internal/testenv"

	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests check the package against Debian's libubootenv-tool
// (fw_printenv, fw_setenv) in both directions, on single and redundant
// environments in files.

func needTools(t *testing.T) {
	t.Helper()
	testenv.NeedTools(t, "fw_printenv", "fw_setenv")
}

// lab is a temporary environment: its fw_env.config, a default
// environment file for fw_setenv, and the image file(s).
type lab struct {
	cfgPath, defPath string
	cfg              Config
}

func newLab(t *testing.T, redundant bool) *lab {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "spi.img")
	// Erased flash: no valid copy yet.
	os.WriteFile(img, bytes.Repeat([]byte{0xff}, 0x200000), 0o644)
	text := fmt.Sprintf("%s 0xC0000 0x2000 0x1000\n", img)
	if redundant {
		text += fmt.Sprintf("%s 0xC2000 0x2000 0x1000\n", img)
	}
	l := &lab{cfgPath: filepath.Join(dir, "fw_env.config"), defPath: filepath.Join(dir, "u-boot-initial-env")}
	os.WriteFile(l.cfgPath, []byte(text), 0o644)
	os.WriteFile(l.defPath, []byte("bootcmd=run distro_bootcmd\nbootdelay=3\nconsole=ttymxc1\n"), 0o644)
	var err error
	if l.cfg, err = ReadConfig(l.cfgPath); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *lab) tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, append([]string{"-c", l.cfgPath, "-f", l.defPath}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// printenv returns what fw_printenv prints for the whole environment,
// without libubootenv's debug lines.
func (l *lab) printenv(t *testing.T) string {
	var keep []string
	for _, line := range strings.SplitAfter(l.tool(t, "fw_printenv"), "\n") {
		if strings.HasPrefix(line, "Environment OK") || strings.HasPrefix(line, "Environment WRONG") || line == "" {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "")
}

func render(e *Env) string {
	var b strings.Builder
	for _, n := range e.Names() {
		v, _ := e.Get(n)
		fmt.Fprintf(&b, "%s=%s\n", n, v)
	}
	return b.String()
}

func (l *lab) open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(l.cfg, Options{DefaultEnv: l.defPath})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tricky are values that exercise the format: spaces, '=', quotes,
// semicolons, ${} references, UTF-8, an empty value, a long one.
var tricky = [][2]string{
	{"bootargs", "console=ttymxc1,115200 root=PARTUUID=0fa11ed5-01 rootwait"},
	{"ofs-size", "20"},
	{"overlayfs", "yes"},
	{"script", `if test -n "${ofs-once}"; then echo 'x=y'; fi`},
	{"utf8", "Zürich ✓"},
	{"empty", ""},
	{"long", strings.Repeat("0123456789", 300)},
	{"serial#", "1234"},
	{"A_upper", "sorted before lower case"},
}

// TestGoWritesToolReads: what Save writes, fw_printenv reads the same.
func TestGoWritesToolReads(t *testing.T) {
	needTools(t)
	for _, redundant := range []bool{false, true} {
		t.Run(fmt.Sprintf("redundant=%v", redundant), func(t *testing.T) {
			l := newLab(t, redundant)
			s := l.open(t)
			e := s.Env()
			for _, kv := range tricky {
				if err := e.Set(kv[0], kv[1]); err != nil {
					t.Fatal(err)
				}
			}
			// Several saves, so that a redundant environment uses both
			// copies and its counter moves.
			for i := 0; i < 3; i++ {
				e.Set("round", fmt.Sprint(i))
				if err := s.Save(e); err != nil {
					t.Fatal(err)
				}
				if got, want := l.printenv(t), render(e); got != want {
					t.Fatalf("round %d: fw_printenv prints\n%s\nwant\n%s", i, got, want)
				}
				if got := l.tool(t, "fw_printenv", "-n", "round"); got != fmt.Sprint(i)+"\n" {
					t.Errorf("fw_printenv -n round = %q", got)
				}
			}
		})
	}
}

// TestToolWritesGoReads: what fw_setenv writes, Open reads the same, and
// the data area is byte for byte what Encode makes.
func TestToolWritesGoReads(t *testing.T) {
	needTools(t)
	for _, redundant := range []bool{false, true} {
		t.Run(fmt.Sprintf("redundant=%v", redundant), func(t *testing.T) {
			l := newLab(t, redundant)
			// From erased flash: fw_setenv starts from the default file.
			l.tool(t, "fw_setenv", "overlayfs", "yes")
			s := l.open(t)
			if !s.Valid() {
				t.Fatalf("fw_setenv's first write is not valid here: %+v", s.Copies())
			}
			want := "bootcmd=run distro_bootcmd\nbootdelay=3\nconsole=ttymxc1\noverlayfs=yes\n"
			if got := render(s.Env()); got != want {
				t.Errorf("read\n%s\nwant\n%s", got, want)
			}
			for _, kv := range tricky {
				if kv[1] == "" {
					continue // fw_setenv NAME "" is its own case below
				}
				l.tool(t, "fw_setenv", kv[0], kv[1])
			}
			l.tool(t, "fw_setenv", "bootdelay") // delete
			s = l.open(t)
			e := s.Env()
			if _, ok := e.Get("bootdelay"); ok {
				t.Error("bootdelay not deleted")
			}
			for _, kv := range tricky {
				if v, ok := e.Get(kv[0]); kv[1] != "" && (!ok || v != kv[1]) {
					t.Errorf("%s = %q, want %q", kv[0], v, kv[1])
				}
			}
			if got, want := render(e), l.printenv(t); got != want {
				t.Errorf("Go reads\n%s\nfw_printenv prints\n%s", got, want)
			}
			// The data area up to its end mark is what Encode makes. (The
			// rest, and so the CRC, may differ: libubootenv leaves the
			// padding as malloc gave it.)
			cur := s.Copies()[s.Current()]
			raw, _ := os.ReadFile(cur.Device)
			copyBytes := raw[cur.Offset : cur.Offset+cur.Size]
			mine, err := Encode(e, int(cur.Size), redundant, cur.Flag)
			if err != nil {
				t.Fatal(err)
			}
			h := HeaderSize(redundant)
			n := h + DataSize(e)
			for i := h; i < n; i++ {
				if copyBytes[i] != mine[i] {
					t.Errorf("fw_setenv's data differs from Encode's at byte %d: %q / %q", i, copyBytes[i:min(n, i+32)], mine[i:min(n, i+32)])
					break
				}
			}
		})
	}
}

// TestAlternating: Go and fw_setenv take turns writing a redundant
// environment whose counter is about to wrap; after every write both
// read the newest values from the same copy.
func TestAlternating(t *testing.T) {
	needTools(t)
	l := newLab(t, true)
	// Start with counters 253 (copy 0) and 254 (copy 1).
	img := l.cfg.Copies[0].Device
	raw, _ := os.ReadFile(img)
	c0, _ := Encode(envOf(t, "n", "old", "bootcmd", "x"), 0x2000, true, 253)
	c1, _ := Encode(envOf(t, "n", "start", "bootcmd", "x"), 0x2000, true, 254)
	copy(raw[0xC0000:], c0)
	copy(raw[0xC2000:], c1)
	os.WriteFile(img, raw, 0o644)

	wantCopy := 1
	for i := 0; i < 6; i++ {
		v := fmt.Sprintf("step%d", i)
		if i%2 == 0 {
			s := l.open(t)
			e := s.Env()
			e.Set("n", v)
			if err := s.Save(e); err != nil {
				t.Fatal(err)
			}
		} else {
			l.tool(t, "fw_setenv", "n", v)
		}
		wantCopy = 1 - wantCopy
		s := l.open(t)
		if s.Current() != wantCopy {
			t.Errorf("step %d: current copy %d, want %d (flags %d %d)", i, s.Current(), wantCopy, s.Copies()[0].Flag, s.Copies()[1].Flag)
		}
		mustGet(t, s, "n", v)
		if got := l.tool(t, "fw_printenv", "-n", "n"); got != v+"\n" {
			t.Errorf("step %d: fw_printenv -n n = %q, want %q", i, got, v)
		}
	}
	// 254 + 6 writes: the counters passed 255 and went on from 0.
	s := l.open(t)
	if f := s.Copies()[s.Current()].Flag; f != 4 {
		t.Errorf("final counter %d, want 4", f)
	}
}

// TestCorruptCopy: with one copy corrupted, both tools fall back to the
// other.
func TestCorruptCopy(t *testing.T) {
	needTools(t)
	l := newLab(t, true)
	s := l.open(t)
	e := s.Env()
	e.Set("n", "older")
	s.Save(e) // copy 1
	e.Set("n", "newer")
	s.Save(e) // copy 0
	img := l.cfg.Copies[0].Device
	raw, _ := os.ReadFile(img)
	raw[0xC0000+100] ^= 0xff // corrupt copy 0, the newer
	os.WriteFile(img, raw, 0o644)
	s = l.open(t)
	if s.Current() != 1 || s.Copies()[0].Valid {
		t.Errorf("current %d, copies %+v", s.Current(), s.Copies())
	}
	mustGet(t, s, "n", "older")
	if got := l.tool(t, "fw_printenv", "-n", "n"); got != "older\n" {
		t.Errorf("fw_printenv -n n = %q", got)
	}
}
