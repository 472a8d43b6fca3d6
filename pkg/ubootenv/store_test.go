package ubootenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memDevice is an in-memory device. As flash (NOR, NAND) it behaves like
// the real thing: programming only clears bits, erasing sets whole
// blocks to 0xff. A byte budget simulates a power cut: the operation
// that exhausts it is applied only partly and every later one fails.
type memDevice struct {
	data   []byte
	medium Medium
	erase  int64
	bad    map[int64]bool
	budget int // bytes that may still change; < 0: unlimited
	erases int
	writes int
}

var errPowerCut = errors.New("power cut")

func newFlash(medium Medium, size, erase int64) *memDevice {
	return &memDevice{data: bytes.Repeat([]byte{0xff}, int(size)), medium: medium, erase: erase, budget: -1}
}

func (d *memDevice) spend(n int) (int, error) {
	if d.budget < 0 {
		return n, nil
	}
	if n > d.budget {
		n = d.budget
		d.budget = 0
		return n, errPowerCut
	}
	d.budget -= n
	return n, nil
}

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.data)) {
		return 0, fmt.Errorf("read 0x%X+%d out of range", off, len(p))
	}
	return copy(p, d.data[off:]), nil
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.data)) {
		return 0, fmt.Errorf("write 0x%X+%d out of range", off, len(p))
	}
	d.writes++
	n, err := d.spend(len(p))
	for i := 0; i < n; i++ {
		if d.medium == MediumFile {
			d.data[off+int64(i)] = p[i]
		} else {
			d.data[off+int64(i)] &= p[i]
		}
	}
	return n, err
}

func (d *memDevice) Erase(off, length int64) error {
	if d.medium == MediumFile {
		return errors.New("not flash")
	}
	if off%d.erase != 0 || length%d.erase != 0 {
		return fmt.Errorf("erase 0x%X+0x%X not aligned to 0x%X", off, length, d.erase)
	}
	d.erases++
	n, err := d.spend(int(length))
	for i := int64(0); i < int64(n); i++ {
		d.data[off+i] = 0xff
	}
	return err
}

func (d *memDevice) Medium() Medium       { return d.medium }
func (d *memDevice) Size() (int64, error) { return int64(len(d.data)), nil }
func (d *memDevice) EraseSize() int64     { return d.erase }
func (d *memDevice) IsBad(off int64) (bool, error) {
	return d.bad[off-off%d.erase], nil
}
func (d *memDevice) Sync() error  { return nil }
func (d *memDevice) Close() error { return nil }

// devices opens named memDevices.
type devices map[string]*memDevice

func (m devices) open(path string, write bool) (Device, error) {
	d, ok := m[path]
	if !ok {
		return nil, os.ErrNotExist
	}
	if d.budget == 0 {
		return nil, errPowerCut
	}
	return d, nil
}

func cfgOf(t testing.TB, text string) Config {
	t.Helper()
	c, err := ParseConfig(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustOpen(t testing.TB, c Config, o Options) *Store {
	t.Helper()
	s, err := Open(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustGet(t testing.TB, s *Store, name, want string) {
	t.Helper()
	if got, ok := s.Env().Get(name); !ok || got != want {
		t.Errorf("%s = %q (set: %v), want %q (from %s)", name, got, ok, want, s.Source())
	}
}

// TestFileSingle: a single copy in a regular file, with a negative offset.
func TestFileSingle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env.img")
	os.WriteFile(path, make([]byte, 0x10000), 0o644)
	cfg := cfgOf(t, path+" -0x4000 0x2000\n")
	if _, err := Open(cfg, Options{}); !errors.Is(err, ErrNoValidCopy) {
		t.Fatalf("blank file: %v, want ErrNoValidCopy", err)
	}
	s := mustOpen(t, cfg, Options{Empty: true})
	if s.Valid() || s.Source() != "an empty environment" {
		t.Errorf("Valid %v, Source %q", s.Valid(), s.Source())
	}
	e := s.Env()
	e.Set("overlayfs", "yes")
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg, Options{})
	mustGet(t, s, "overlayfs", "yes")
	if c := s.Copies()[0]; c.Offset != 0xC000 || !c.Valid || c.Medium != MediumFile {
		t.Errorf("copy %+v", c)
	}
	b, _ := os.ReadFile(path)
	if _, _, err := Decode(b[0xC000:0xE000], false); err != nil {
		t.Errorf("not at 0x10000-0x4000: %v", err)
	}
	if !bytes.Equal(b[:0xC000], make([]byte, 0xC000)) || !bytes.Equal(b[0xE000:], make([]byte, 0x2000)) {
		t.Error("bytes outside the environment changed")
	}
}

// TestFileRedundantCounter: writes alternate between the copies, each
// one's counter one above the other's, and 0 follows 255.
func TestFileRedundantCounter(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cfg := cfgOf(t, fmt.Sprintf("%s 0 0x1000\n%s 0x1000 0x1000\n", a, b))
	ca, _ := Encode(envOf(t, "v", "old"), 0x1000, true, 254)
	cb, _ := Encode(envOf(t, "v", "new"), 0x1000, true, 255)
	os.WriteFile(a, ca, 0o644)
	os.WriteFile(b, append(make([]byte, 0x1000), cb...), 0o644)

	s := mustOpen(t, cfg, Options{})
	if s.Current() != 1 {
		t.Fatalf("255 is newer than 254: current %d", s.Current())
	}
	mustGet(t, s, "v", "new")
	for i, want := range []struct {
		current int
		flag    byte
	}{{0, 0}, {1, 1}, {0, 2}} {
		e := s.Env()
		e.Set("v", fmt.Sprint(i))
		if err := s.Save(e); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, cfg, Options{})
		if s.Current() != want.current || s.Copies()[want.current].Flag != want.flag {
			t.Errorf("save %d: current %d flag %d, want %d flag %d", i, s.Current(), s.Copies()[s.Current()].Flag, want.current, want.flag)
		}
		mustGet(t, s, "v", fmt.Sprint(i))
	}
}

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		v0, v1    bool
		f0, f1    byte
		nor       bool
		cur       int
		wantValid bool
	}{
		{true, false, 9, 10, false, 0, true},
		{false, true, 10, 9, false, 1, true},
		{false, false, 1, 2, false, 0, false},
		{true, true, 3, 4, false, 1, true},
		{true, true, 4, 3, false, 0, true},
		{true, true, 255, 0, false, 1, true},
		{true, true, 0, 255, false, 0, true},
		{true, true, 5, 5, false, 0, true},
		{true, true, 1, 0, true, 0, true},
		{true, true, 0, 1, true, 1, true},
		{true, true, 1, 1, true, 0, true},
		{true, true, 1, 255, true, 1, true},
		{true, true, 255, 0, true, 0, true},
	} {
		m := MediumFile
		if tc.nor {
			m = MediumNOR
		}
		cur, valid := pick([]CopyState{{Valid: tc.v0, Flag: tc.f0, Medium: m}, {Valid: tc.v1, Flag: tc.f1, Medium: m}})
		if cur != tc.cur || valid != tc.wantValid {
			t.Errorf("%+v: got %d %v", tc, cur, valid)
		}
	}
}

// TestNORSingle: on NOR the blocks holding the copy are erased before
// they are written; bytes sharing a block with the environment survive;
// unchanged blocks are not erased.
func TestNORSingle(t *testing.T) {
	d := newFlash(MediumNOR, 0x20000, 0x1000)
	for i := range d.data {
		d.data[i] = byte(i * 7)
	}
	before := bytes.Clone(d.data)
	devs := devices{"/dev/mtd0": d}
	// An environment not aligned to the erase blocks: 0xC800-0xE800.
	cfg := cfgOf(t, "/dev/mtd0 0xC800 0x2000 0x1000\n")
	s := mustOpen(t, cfg, Options{Open: devs.open, Empty: true})
	e := s.Env()
	e.Set("overlayfs", "yes")
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.data[:0xC800], before[:0xC800]) || !bytes.Equal(d.data[0xE800:], before[0xE800:]) {
		t.Error("bytes outside the environment changed")
	}
	if d.erases != 3 {
		t.Errorf("%d erases, want 3 (blocks 0xC000, 0xD000, 0xE000)", d.erases)
	}
	s = mustOpen(t, cfg, Options{Open: devs.open})
	mustGet(t, s, "overlayfs", "yes")

	// Changing a short value rewrites the first block (CRC and data)
	// only.
	d.erases = 0
	e = s.Env()
	e.Set("overlayfs", "no!")
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	if d.erases != 1 {
		t.Errorf("%d erases, want 1", d.erases)
	}
	d.erases = 0
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	if d.erases != 0 {
		t.Errorf("saving the same environment erased %d blocks", d.erases)
	}
}

// TestNORRedundant: the new copy is written active (1), then the old
// one's flag is programmed to obsolete (0) without an erase.
func TestNORRedundant(t *testing.T) {
	d := newFlash(MediumNOR, 0x10000, 0x1000)
	devs := devices{"/dev/mtd1": d}
	cfg := cfgOf(t, "/dev/mtd1 0x0 0x2000 0x1000\n/dev/mtd1 0x2000 0x2000 0x1000\n")
	s := mustOpen(t, cfg, Options{Open: devs.open, Empty: true})
	for i := 0; i < 4; i++ {
		e := s.Env()
		e.Set("n", fmt.Sprint(i))
		if err := s.Save(e); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, cfg, Options{Open: devs.open})
		mustGet(t, s, "n", fmt.Sprint(i))
		c := s.Copies()
		cur := s.Current()
		if c[cur].Flag != 1 {
			t.Errorf("save %d: current copy %d has flag %d, want 1 (active)", i, cur, c[cur].Flag)
		}
		if c[1-cur].Valid && c[1-cur].Flag != 0 {
			t.Errorf("save %d: old copy flag %d, want 0 (obsolete)", i, c[1-cur].Flag)
		}
		if want := (i + 1) % 2; cur != want {
			t.Errorf("save %d went to copy %d, want %d", i, cur, want)
		}
	}
}

// TestNANDBadBlock: a bad block inside the copy's area is skipped when
// reading and writing.
func TestNANDBadBlock(t *testing.T) {
	d := newFlash(MediumNAND, 0x100000, 0x20000)
	d.bad = map[int64]bool{0x40000: true}
	devs := devices{"/dev/mtd2": d}
	cfg := cfgOf(t, "/dev/mtd2 0x40000 0x20000 0x20000 2\n/dev/mtd2 0x80000 0x20000 0x20000 2\n")
	s := mustOpen(t, cfg, Options{Open: devs.open, Empty: true})
	for i := 0; i < 3; i++ {
		e := s.Env()
		e.Set("n", fmt.Sprint(i))
		if err := s.Save(e); err != nil {
			t.Fatal(err)
		}
		s = mustOpen(t, cfg, Options{Open: devs.open})
		mustGet(t, s, "n", fmt.Sprint(i))
	}
	if !bytes.Equal(d.data[0x40000:0x60000], bytes.Repeat([]byte{0xff}, 0x20000)) {
		t.Error("the bad block was written")
	}
	if _, _, err := Decode(d.data[0x60000:0x80000], true); err != nil {
		t.Errorf("copy 0 is not in the block after the bad one: %v", err)
	}
	d.bad[0x60000] = true
	if _, err := Open(cfg, Options{Open: devs.open}); err == nil || !strings.Contains(err.Error(), "bad blocks") {
		t.Errorf("two bad blocks with a budget of 2 sectors: %v", err)
	}
}

// TestPowerCut cuts the power after every possible number of changed
// bytes during a save. With two copies the environment read afterwards
// is always valid and is either the old or the new one; with one copy it
// is sometimes lost (U-Boot then uses its built-in default), which is why
// the package documentation says so.
func TestPowerCut(t *testing.T) {
	oldEnv := envOf(t, "bootcmd", "run distro_bootcmd", "overlayfs", "yes", "ofs-size", "20")
	newEnv := oldEnv.Clone()
	newEnv.Set("overlayfs", "no")

	for _, tc := range []struct {
		name      string
		medium    Medium
		erase     int64
		cfg       string
		redundant bool
	}{
		{"file redundant", MediumFile, 0, "dev 0x0 0x400\ndev 0x400 0x400\n", true},
		{"NOR redundant", MediumNOR, 0x400, "dev 0x0 0x400 0x400\ndev 0x400 0x400 0x400\n", true},
		{"NOR single", MediumNOR, 0x400, "dev 0x0 0x800 0x400\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgOf(t, tc.cfg)
			fresh := func() *memDevice {
				d := newFlash(tc.medium, 0x1000, tc.erase)
				s := mustOpen(t, cfg, Options{Open: devices{"dev": d}.open, Empty: true})
				// Two saves, so that both copies hold the old one.
				for i := 0; i < 2; i++ {
					if err := s.Save(oldEnv); err != nil {
						t.Fatal(err)
					}
				}
				return d
			}
			// How many bytes a whole save changes.
			d := fresh()
			d.budget = 1 << 30
			s := mustOpen(t, cfg, Options{Open: devices{"dev": d}.open})
			if err := s.Save(newEnv); err != nil {
				t.Fatal(err)
			}
			total := 1<<30 - d.budget
			lost := 0
			for cut := 0; cut <= total; cut++ {
				d := fresh()
				devs := devices{"dev": d}
				s := mustOpen(t, cfg, Options{Open: devs.open})
				d.budget = cut
				err := s.Save(newEnv)
				if cut < total && err == nil {
					t.Fatalf("cut after %d of %d bytes: Save reported success", cut, total)
				}
				d.budget = -1 // power back on
				after, err := Open(cfg, Options{Open: devs.open})
				switch {
				case err != nil && tc.redundant:
					t.Fatalf("cut after %d of %d bytes: %v", cut, total, err)
				case err != nil:
					lost++
				case !after.Env().Equal(oldEnv) && !after.Env().Equal(newEnv):
					t.Fatalf("cut after %d of %d bytes: neither old nor new: %q", cut, total, after.Env().Names())
				}
			}
			if !tc.redundant && lost == 0 {
				t.Error("a single copy never lost: the simulation is not cutting anything")
			}
			t.Logf("%d cut points, environment lost at %d", total+1, lost)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, make([]byte, 0x1000), 0o644)
	if _, err := Open(cfgOf(t, small+" 0x800 0x1000\n"), Options{Empty: true}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("copy past the end: %v", err)
	}
	if _, err := Open(cfgOf(t, filepath.Join(dir, "missing")+" 0 0x1000\n"), Options{Empty: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing device: %v", err)
	}
	if _, err := Open(Config{}, Options{}); err == nil {
		t.Error("no copies: want an error")
	}
	devs := devices{"nor": newFlash(MediumNOR, 0x4000, 0x1000), "file": {data: make([]byte, 0x4000), budget: -1}}
	if _, err := Open(cfgOf(t, "nor 0 0x1000\nfile 0 0x1000\n"), Options{Open: devs.open, Empty: true}); err == nil || !strings.Contains(err.Error(), "differently") {
		t.Errorf("NOR and file copies: %v", err)
	}
	if _, err := OpenDevice(dir, false); err == nil {
		t.Error("a folder as the device: want an error")
	}
}

// TestDefaultEnv: with no valid copy, the default file is the start, as
// fw_setenv -f does; the error names the copies when there is none.
func TestDefaultEnv(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "spi.img")
	os.WriteFile(img, bytes.Repeat([]byte{0xff}, 0x4000), 0o644)
	cfg := cfgOf(t, img+" 0x2000 0x2000 0x1000\n")
	_, err := Open(cfg, Options{DefaultEnv: filepath.Join(dir, "none")})
	if !errors.Is(err, ErrNoValidCopy) || !strings.Contains(err.Error(), "bad CRC") || !strings.Contains(err.Error(), "saveenv") {
		t.Errorf("error %v", err)
	}
	def := filepath.Join(dir, "u-boot-initial-env")
	os.WriteFile(def, []byte("bootcmd=run distro_bootcmd\nbootdelay=3\n"), 0o644)
	s := mustOpen(t, cfg, Options{DefaultEnv: def, LockPath: filepath.Join(dir, "lock")})
	defer s.Close()
	if s.Valid() || !strings.Contains(s.Source(), "default environment") {
		t.Errorf("Valid %v Source %q", s.Valid(), s.Source())
	}
	e := s.Env()
	e.Set("overlayfs", "yes")
	if err := s.Save(e); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, cfg, Options{})
	mustGet(t, s2, "bootcmd", "run distro_bootcmd")
	mustGet(t, s2, "overlayfs", "yes")
}
